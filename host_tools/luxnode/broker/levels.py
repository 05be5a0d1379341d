"""Tries over topic levels, shared by the subscription index and the retained index.

A node has a ``children`` dict (level -> node); what else it holds is its owner's.
"""


def descend(root, levels: list[str], make):
    """The node at ``levels`` below ``root``, made with ``make()`` where missing."""
    node = root
    for level in levels:
        child = node.children.get(level)
        if child is None:
            child = node.children[level] = make()
        node = child
    return node


def path(root, levels: list[str]) -> list | None:
    """The nodes from ``root`` down to ``levels`` (root first), or None if one is missing."""
    nodes = [root]
    for level in levels:
        node = nodes[-1].children.get(level)
        if node is None:
            return None
        nodes.append(node)
    return nodes


def prune(nodes: list, levels: list[str], holds) -> None:
    """Remove the nodes at the end of ``nodes`` (a ``path``) that have no children and of
    which ``holds(node)`` is false, so a trie stays the size of what it indexes."""
    for depth in range(len(levels), 0, -1):
        node = nodes[depth]
        if node.children or holds(node):
            break
        del nodes[depth - 1].children[levels[depth - 1]]
