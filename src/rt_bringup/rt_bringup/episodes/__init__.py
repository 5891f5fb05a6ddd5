"""rt-collect and rt-eval: closed-loop episodes in the simulator, on the graph that sim.launch.xml describes."""
