"""PathSet: the on-disk set a resumed run skips by — exact membership, each path counted once,
order kept when filtering, usable from the progress counter's thread."""

import threading

from resnet_cli.outputs.pathset import PathSet


def test_membership_count_and_order():
    paths = [f"/photos/{i:06d}.jpg" for i in range(25_000)]  # more than one insert batch
    done = PathSet(paths[::2] + paths[:10:2])  # repeats count once
    assert len(done) == 12_500 and bool(done)
    assert paths[0] in done and paths[1] not in done and "/photos/x.jpg" not in done
    assert list(done.without(paths)) == paths[1::2]  # the rest, in input order
    items = [(p, i) for i, p in enumerate(paths[:1001])]
    assert [i for _, i in done.without(items, lambda item: item[0])] == list(range(1, 1001, 2))


def test_odd_names_and_an_empty_set():
    odd = ["caf\u00e9.jpg", "bad\udcff.jpg", "a\nb.jpg", ""]
    done = PathSet(odd)
    assert all(name in done for name in odd) and "cafe.jpg" not in done
    empty = PathSet()
    assert not empty and len(empty) == 0 and "x" not in empty
    assert list(empty.without(iter(["a", "b"]))) == ["a", "b"]


def test_two_threads_at_once():
    done = PathSet(f"{i}" for i in range(5000))
    results = []

    def count():
        results.append(sum(1 for _ in done.without(str(i) for i in range(10_000))))

    threads = [threading.Thread(target=count) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [5000, 5000]


def test_members_of_a_group_whole_and_only_theirs():
    """With a ``group`` (a record path's tar shard), a group's paths come back whole — odd
    names too — and a path of no group is only in the set."""

    def shard(path):
        return path.split("#")[0] if "#" in path else None

    paths = [f"a.tar#{i:05d}.jpg" for i in range(60_000)] + ["b.tar#caf\u00e9\n.jpg", "b.tar#bad\udcff.jpg", "c.jpg"]
    done = PathSet(paths, group=shard)
    assert len(done) == len(paths) and "c.jpg" in done
    assert done.members("a.tar") == frozenset(paths[:60_000])
    assert done.members("b.tar") == {"b.tar#caf\u00e9\n.jpg", "b.tar#bad\udcff.jpg"}
    assert done.members("c.jpg") == frozenset() == PathSet(paths).members("a.tar")
