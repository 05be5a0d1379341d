"""Which sessions want a topic: a trie over topic levels, with a match cache.

Matching walks only the levels of the published topic (plus the ``+`` and
``#`` branches), never the whole list of filters, with an explicit stack (no
recursion, whatever the depth). Results are cached per topic and the cache is
dropped whenever a subscription changes, which is rare next to publishing; it is
bounded in bytes, since topics may be 65,535 bytes long.
"""

from . import levels as trie

# Bytes the match cache may hold (topic text plus a per-entry estimate).
CACHE_BYTES = 4 << 20
CACHE_ENTRY_OVERHEAD = 200


class _Node:
    __slots__ = ("children", "subscribers")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.subscribers: dict = {}  # session -> granted QoS


class SubscriptionIndex:
    def __init__(self):
        self._root = _Node()
        self._cache: dict[str, list] = {}
        self._cache_bytes = 0
        self.count = 0

    def add(self, topic_filter: str, session, qos: int) -> None:
        node = trie.descend(self._root, topic_filter.split("/"), _Node)
        if session not in node.subscribers:
            self.count += 1
        node.subscribers[session] = qos
        self._clear_cache()

    def remove(self, topic_filter: str, session) -> bool:
        levels = topic_filter.split("/")
        nodes = trie.path(self._root, levels)
        if nodes is None or nodes[-1].subscribers.pop(session, None) is None:
            return False
        self.count -= 1
        self._clear_cache()
        trie.prune(nodes, levels, _has_subscribers)
        return True

    def _clear_cache(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0

    def match(self, topic: str) -> list:
        """[(session, qos)] for ``topic``, each session once at its highest QoS."""
        found = self._cache.get(topic)
        if found is not None:
            return found
        best: dict = {}
        levels = topic.split("/")
        last = len(levels)
        # A leading wildcard never matches a $ topic.
        wild_at_root = not topic.startswith("$")
        stack = [(self._root, 0)]
        pop, push = stack.pop, stack.append
        while stack:
            node, depth = pop()
            children = node.children
            wild = depth or wild_at_root
            if wild:
                hash_node = children.get("#")
                if hash_node is not None:
                    _merge(best, hash_node.subscribers)
            if depth == last:
                _merge(best, node.subscribers)
                continue
            child = children.get(levels[depth])
            if child is not None:
                push((child, depth + 1))
            if wild:
                plus = children.get("+")
                if plus is not None:
                    push((plus, depth + 1))
        found = list(best.items())
        cost = len(topic) + CACHE_ENTRY_OVERHEAD + 16 * len(found)
        if self._cache_bytes + cost > CACHE_BYTES:
            self._clear_cache()
        self._cache[topic] = found
        self._cache_bytes += cost
        return found


def _has_subscribers(node: _Node) -> bool:
    return bool(node.subscribers)


def _merge(best: dict, subscribers: dict) -> None:
    for session, qos in subscribers.items():
        if best.get(session, -1) < qos:
            best[session] = qos
