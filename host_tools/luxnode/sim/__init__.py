"""Simulated nodes: the unchanged firmware on the MicroPython unix port with a simulated board."""

from luxnode.sim.fsroot import node_config, write_root
from luxnode.sim.node import SimNode, start_nodes, stop_nodes

__all__ = ["SimNode", "node_config", "start_nodes", "stop_nodes", "write_root"]
