"""Runs launch/*.launch.py here, where ROS 2's `launch` and `launch_ros` cannot be installed
(neither is on PyPI: environment.md), so the launch files are tested by what they start.

`plan(path, arguments, prefix, workdir)` executes a launch file's own code with stand-ins for
the few launch / launch_ros classes it uses: generate_launch_description(), its argument
declarations and defaults, its OpaqueFunctions, its SetEnvironmentVariable, conditions, and its
share-directory lookups through the real ament index (ament_index_python, AMENT_PREFIX_PATH =
`prefix`). The description becomes the processes launch_ros would start:

    Node(package, executable, name, namespace, parameters, remappings, ros_arguments)
        -> <prefix>/lib/<package>/<executable> --ros-args -r __node:=NAME -r __ns:=/NS
           --params-file FILE (a dict: written to a YAML file, as launch_ros does)
           -r FROM:=TO ... ROS_ARGUMENTS
    ExecuteProcess(cmd)  -> cmd
    RegisterEventHandler(OnProcessExit(target, [EmitEvent(Shutdown())]))
        -> the target ends the launch (`Planned.ends_launch`)

An entity, argument or keyword the stand-in does not know fails loudly (TypeError), so a
launch file cannot drift into something only the stand-in accepts. On ROS 2 machines,
test_launch_description_actions loads the same files with the real packages.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class LaunchContext:
    def __init__(self) -> None:
        self.launch_configurations: dict[str, str] = {}


def perform(value: Any, context: LaunchContext) -> str:
    """A substitution, a list of them (concatenated, as launch does) or plain text -> text."""
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, context) for v in value)
    return value.perform(context) if hasattr(value, "perform") else str(value)


class LaunchConfiguration:
    def __init__(self, variable_name: str) -> None:
        self.name = variable_name

    def perform(self, context: LaunchContext) -> str:
        if self.name not in context.launch_configurations:
            raise KeyError(f"launch configuration {self.name!r} is not set (not a declared argument?)")
        return context.launch_configurations[self.name]


class LaunchDescription:
    def __init__(self, initial_entities: list[Any]) -> None:
        self.entities = list(initial_entities)


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None, description: str = "") -> None:
        self.name, self.default_value, self.description = name, default_value, description


class SetEnvironmentVariable:
    def __init__(self, name: Any, value: Any) -> None:
        self.name, self.value = name, value


class OpaqueFunction:
    def __init__(self, *, function: Any, args: list | None = None, kwargs: dict | None = None) -> None:
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}

    def execute(self, context: LaunchContext) -> list[Any]:
        return list(self.function(context, *self.args, **self.kwargs) or [])


class IfCondition:
    def __init__(self, predicate_expression: Any) -> None:
        self.predicate = predicate_expression

    def evaluate(self, context: LaunchContext) -> bool:
        text = perform(self.predicate, context).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"IfCondition expects true/false, got {text!r}")  # as launch does
        return text in ("true", "1")


class ExecuteProcess:
    def __init__(self, *, cmd: list[Any], name: str | None = None, output: str = "log") -> None:
        self.cmd, self.name, self.output = cmd, name, output


class OnProcessExit:
    def __init__(self, *, target_action: Any, on_exit: list[Any]) -> None:
        self.target_action, self.on_exit = target_action, on_exit


class RegisterEventHandler:
    def __init__(self, event_handler: Any) -> None:
        self.event_handler = event_handler


class Shutdown:
    def __init__(self, *, reason: str = "") -> None:
        self.reason = reason


class EmitEvent:
    def __init__(self, *, event: Any) -> None:
        self.event = event


class Node:
    def __init__(self, *, package: str, executable: str, name: str | None = None, namespace: str | None = None,
                 parameters: list | None = None, remappings: list | None = None, ros_arguments: list | None = None,
                 arguments: list | None = None, condition: Any = None, output: str = "log",
                 emulate_tty: bool = False) -> None:
        self.package, self.executable, self.name, self.namespace = package, executable, name, namespace
        self.parameters, self.remappings = parameters or [], remappings or []
        self.ros_arguments, self.arguments, self.condition = ros_arguments or [], arguments or [], condition


MODULES = {
    "launch": {"LaunchDescription": LaunchDescription, "LaunchContext": LaunchContext},
    "launch.actions": {c.__name__: c for c in (DeclareLaunchArgument, SetEnvironmentVariable, OpaqueFunction,
                                               ExecuteProcess, RegisterEventHandler, EmitEvent)},
    "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
    "launch.conditions": {"IfCondition": IfCondition},
    "launch.event_handlers": {"OnProcessExit": OnProcessExit},
    "launch.events": {"Shutdown": Shutdown},
    "launch_ros": {},
    "launch_ros.actions": {"Node": Node},
}


def install(monkeypatch) -> None:
    """Put the stand-ins in sys.modules for one test (monkeypatch undoes it)."""
    for name, members in MODULES.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        module.__path__ = []  # a package, so `launch.actions` imports
        monkeypatch.setitem(sys.modules, name, module)


@dataclass
class Planned:
    """One process the launch would start."""

    name: str
    cmd: list[str]
    is_node: bool
    ends_launch: bool = False  # its exit shuts the launch down (OnProcessExit -> Shutdown)


@dataclass
class Plan:
    arguments: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)  # SetEnvironmentVariable
    processes: list[Planned] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # nodes whose condition is false


def _node_cmd(node: Node, context: LaunchContext, workdir: Path, index: int) -> list[str]:
    from ament_index_python.packages import get_package_prefix

    exe = Path(get_package_prefix(node.package)) / "lib" / node.package / node.executable
    if not exe.is_file():
        raise FileNotFoundError(f"{node.package}/{node.executable} not found in the ament index: {exe}")
    cmd = [str(exe), *[perform(a, context) for a in node.arguments], "--ros-args"]
    if node.name:
        cmd += ["-r", f"__node:={perform(node.name, context)}"]
    if node.namespace:
        ns = perform(node.namespace, context)
        cmd += ["-r", f"__ns:={ns if ns.startswith('/') else '/' + ns}"]
    for i, params in enumerate(node.parameters):
        if isinstance(params, dict):  # launch_ros writes a dict into a parameters file of its own
            path = workdir / f"launch_params_{index}_{i}.yaml"
            values = {k: perform(v, context) if hasattr(v, "perform") else v for k, v in params.items()}
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
            cmd += ["--params-file", str(path)]
        else:
            cmd += ["--params-file", perform(params, context)]
    for src, dst in node.remappings:
        cmd += ["-r", f"{perform(src, context)}:={perform(dst, context)}"]
    return cmd + [perform(a, context) for a in node.ros_arguments]


def plan(path: Path, arguments: dict[str, str], workdir: Path) -> Plan:
    """What launching `path` with `arguments` starts (install() first; AMENT_PREFIX_PATH set)."""
    spec = importlib.util.spec_from_file_location(path.name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    entities = module.generate_launch_description().entities
    context = LaunchContext()
    declared = [e for e in entities if isinstance(e, DeclareLaunchArgument)]
    unknown = set(arguments) - {d.name for d in declared}
    if unknown:
        raise TypeError(f"not arguments of {path.name}: {sorted(unknown)}")
    for arg in declared:
        if arg.name in arguments:
            context.launch_configurations[arg.name] = arguments[arg.name]
        elif arg.default_value is not None:
            context.launch_configurations[arg.name] = perform(arg.default_value, context)
        else:
            raise TypeError(f"{path.name} needs the argument {arg.name}:=...")
    result = Plan(dict(context.launch_configurations))
    planned: dict[int, Planned] = {}

    def visit(entity: Any) -> None:
        if isinstance(entity, DeclareLaunchArgument):
            return
        if isinstance(entity, SetEnvironmentVariable):
            result.env[perform(entity.name, context)] = perform(entity.value, context)
        elif isinstance(entity, OpaqueFunction):
            for sub in entity.execute(context):
                visit(sub)
        elif isinstance(entity, Node):
            label = f"{entity.package}/{entity.executable}"
            if entity.condition is not None and not entity.condition.evaluate(context):
                result.skipped.append(label)
                return
            p = Planned(label, _node_cmd(entity, context, workdir, len(result.processes)), True)
            planned[id(entity)] = p
            result.processes.append(p)
        elif isinstance(entity, ExecuteProcess):
            p = Planned(entity.name or "process", [perform(c, context) for c in entity.cmd], False)
            planned[id(entity)] = p
            result.processes.append(p)
        elif isinstance(entity, RegisterEventHandler) and isinstance(entity.event_handler, OnProcessExit):
            handler = entity.event_handler
            if any(isinstance(a, EmitEvent) and isinstance(a.event, Shutdown) for a in handler.on_exit):
                planned[id(handler.target_action)].ends_launch = True
        else:
            raise TypeError(f"the launch stand-in does not know {type(entity).__name__}")

    for entity in entities:
        visit(entity)
    return result
