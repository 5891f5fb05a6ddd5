"""MuJoCo mobile-manipulator simulation: sim node, tasks, scripted expert, collection."""
