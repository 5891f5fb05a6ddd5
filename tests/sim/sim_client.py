"""Test-side calls into a running rt_sim: set task and seed, reset, read the task state."""

from __future__ import annotations

import json

from harness import Probe, wait_for
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_srvs.srv import Trigger


def call(probe: Probe, srv_type, name: str, request, timeout: float = 30.0):
    client = probe.node.create_client(srv_type, name)
    wait_for(client.service_is_ready, timeout, f"service {name}")
    future = client.call_async(request)
    wait_for(future.done, timeout, f"an answer from {name}")
    probe.node.destroy_client(client)
    return future.result()


def reset(probe: Probe, task: str, seed: int) -> Trigger.Response:
    """Sets the sim's `task` and `seed` parameters, then calls sim/reset."""
    parameters = [
        Parameter(name="task", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=task)),
        Parameter(name="seed", value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=seed)),
    ]
    results = call(probe, SetParameters, "/rt_sim/set_parameters", SetParameters.Request(parameters=parameters))
    assert all(r.successful for r in results.results)
    return call(probe, Trigger, "sim/reset", Trigger.Request())


def task_state(probe: Probe) -> dict:
    return json.loads(call(probe, Trigger, "sim/task_state", Trigger.Request()).message)
