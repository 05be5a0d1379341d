"""Which sessions want a topic: a trie over topic levels, with a match cache.

Matching walks only the levels of the published topic (plus the ``+`` and
``#`` branches), never the whole list of filters. Results are cached per
topic and the cache is dropped whenever a subscription changes, which is rare
next to publishing.
"""

CACHE_LIMIT = 10_000


class _Node:
    __slots__ = ("children", "subscribers")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.subscribers: dict = {}  # session -> granted QoS


class SubscriptionIndex:
    def __init__(self):
        self._root = _Node()
        self._cache: dict[str, list] = {}
        self.count = 0

    def add(self, topic_filter: str, session, qos: int) -> None:
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if session not in node.subscribers:
            self.count += 1
        node.subscribers[session] = qos
        self._cache.clear()

    def remove(self, topic_filter: str, session) -> bool:
        path = [self._root]
        levels = topic_filter.split("/")
        for level in levels:
            node = path[-1].children.get(level)
            if node is None:
                return False
            path.append(node)
        if path[-1].subscribers.pop(session, None) is None:
            return False
        self.count -= 1
        self._cache.clear()
        # Prune branches left empty so the trie does not grow without bound.
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.subscribers or node.children:
                break
            del path[depth - 1].children[levels[depth - 1]]
        return True

    def match(self, topic: str) -> list:
        """[(session, qos)] for ``topic``, each session once at its highest QoS."""
        found = self._cache.get(topic)
        if found is not None:
            return found
        best: dict = {}
        levels = topic.split("/")
        self._walk(self._root, levels, 0, best, topic.startswith("$"))
        found = list(best.items())
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def _walk(self, node: _Node, levels: list[str], depth: int, best: dict, dollar: bool) -> None:
        children = node.children
        # A leading wildcard never matches a $ topic.
        wild = not (dollar and depth == 0)
        if wild:
            hash_node = children.get("#")
            if hash_node is not None:
                _merge(best, hash_node.subscribers)
        if depth == len(levels):
            _merge(best, node.subscribers)
            return
        child = children.get(levels[depth])
        if child is not None:
            self._walk(child, levels, depth + 1, best, dollar)
        if wild:
            plus = children.get("+")
            if plus is not None:
                self._walk(plus, levels, depth + 1, best, dollar)


def _merge(best: dict, subscribers: dict) -> None:
    for session, qos in subscribers.items():
        if best.get(session, -1) < qos:
            best[session] = qos
