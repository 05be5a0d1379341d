"""The retained-message index answers every filter as a scan with topics.matches would."""

from hypothesis import given, settings, strategies as st

from luxnode.broker.retained import Retained
from luxnode.mqtt import topics

levels = st.sampled_from(["a", "b", "", "$SYS", "$x", "c"])
names = st.lists(levels, min_size=1, max_size=4).map("/".join).filter(lambda t: t and not topics.name_error(t))
filter_levels = st.sampled_from(["a", "b", "", "$SYS", "c", "+"])
filters = st.tuples(st.lists(filter_levels, min_size=1, max_size=4), st.booleans()).map(
    lambda parts: "/".join(parts[0] + (["#"] if parts[1] else [])))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, st.booleans()), max_size=25), st.lists(filters, min_size=1, max_size=5))
def test_index_matches_a_scan(operations, topic_filters):
    index, scanned = Retained(), {}
    for topic, keep in operations:
        if keep:
            index[topic] = scanned[topic] = (topic.encode(), 0)
        else:
            assert index.pop(topic, None) == scanned.pop(topic, None)
    assert dict(index) == scanned
    for topic_filter in topic_filters:
        assert index.match(topic_filter) == [t for t in scanned if topics.matches(topic_filter, t)], topic_filter


def test_emptied_levels_are_pruned():
    index = Retained()
    index["a/b/c"] = (b"1", 0)
    index["a/d"] = (b"2", 0)
    del index["a/b/c"]
    assert list(index._root.children["a"].children) == ["d"]
    index.pop("a/d")
    assert not index._root.children
