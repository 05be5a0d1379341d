"""Retained messages indexed by topic level, so a SUBSCRIBE costs what it matches.

``Retained`` maps topic -> (payload, QoS) like a dict (persistence reads it that
way) and keeps a trie of the same topics beside it. ``match(filter)`` walks only
the branches the filter can reach, with an explicit stack: ``a/+/c`` visits the
children of ``a`` and then one child each, ``a/#`` the subtree under ``a``. Matches
come back in the order the topics were first retained, as a scan of the dict did.
"""

from itertools import count

from . import levels as trie


class _Level:
    __slots__ = ("children", "seq")

    def __init__(self):
        self.children: dict[str, _Level] = {}
        self.seq = 0  # > 0 while a message is retained on exactly this topic


def _holds_message(node: _Level) -> bool:
    return node.seq > 0


class Retained(dict):
    """topic -> (payload, QoS), plus a level trie for wildcard look-ups."""

    def __init__(self):
        super().__init__()
        self._root = _Level()
        self._order = count(1)

    def __setitem__(self, topic: str, message: tuple[bytes, int]) -> None:
        if topic not in self:
            trie.descend(self._root, topic.split("/"), _Level).seq = next(self._order)
        super().__setitem__(topic, message)

    def pop(self, topic: str, *default):
        if topic not in self:
            return super().pop(topic, *default)  # the default, or KeyError as dict.pop
        message = super().pop(topic)
        levels = topic.split("/")
        nodes = trie.path(self._root, levels)
        nodes[-1].seq = 0
        trie.prune(nodes, levels, _holds_message)
        return message

    def __delitem__(self, topic: str) -> None:
        self.pop(topic)

    def update(self, messages: dict) -> None:
        for topic, message in messages.items():
            self[topic] = message

    def match(self, topic_filter: str) -> list[str]:
        """The retained topics ``topic_filter`` matches (a leading wildcard skips ``$`` topics)."""
        if "+" not in topic_filter and "#" not in topic_filter:
            return [topic_filter] if topic_filter in self else []
        levels = topic_filter.split("/")
        last = len(levels)
        found: list[tuple[int, str]] = []
        stack = [(self._root, 0, "")]
        while stack:
            node, depth, path = stack.pop()
            if depth == last:
                if node.seq:
                    found.append((node.seq, path))
                continue
            level = levels[depth]
            prefix = path + "/" if depth else ""
            if level == "#":
                if node.seq and depth:  # "a/#" matches "a" itself
                    found.append((node.seq, path))
                below = [(child, prefix + name) for name, child in node.children.items()
                         if depth or not name.startswith("$")]
                while below:
                    child, child_path = below.pop()
                    if child.seq:
                        found.append((child.seq, child_path))
                    below.extend((grandchild, child_path + "/" + name)
                                 for name, grandchild in child.children.items())
            elif level == "+":
                for name, child in node.children.items():
                    if depth or not name.startswith("$"):
                        stack.append((child, depth + 1, prefix + name))
            else:
                child = node.children.get(level)
                if child is not None:
                    stack.append((child, depth + 1, prefix + level))
        found.sort()
        return [topic for _, topic in found]
