"""The ray engine's actor pool on a stand-in for Ray (no cluster): what it does when a decode
task's end is seen only after its last block was given back."""

from resnet_cli.engines.ray_pool import ActorPool


class Ref:
    def __init__(self, value):
        self.value = value


class Method:
    def __init__(self, function):
        self.function = function

    def remote(self, *args):
        return Ref(self.function(*args))


class Actor:
    def __init__(self):
        self.ready = Method(lambda: True)
        self.score = Method(lambda decoded: {"scored": decoded})


class Generator:
    """A decode task's stream: its blocks, and its end once ``ended`` (Ray can report a
    stream's last block before it reports that the stream ended)."""

    def __init__(self, *blocks):
        self.blocks, self.ended = list(blocks), False

    def next_ready(self) -> bool:
        return bool(self.blocks) or self.ended

    def __next__(self):
        if self.blocks:
            return self.blocks.pop(0)
        raise StopIteration

    def is_finished(self) -> bool:
        return self.ended and not self.blocks

    def completed(self):
        return Ref(None)


class Ray:
    """Every call has finished by the time anyone waits for it."""

    @staticmethod
    def wait(refs, num_returns=1, timeout=None):
        return list(refs), []

    @staticmethod
    def get(ref):
        return ref.value

    @staticmethod
    def kill(actor):
        pass


def test_a_task_that_ends_after_its_last_block_was_given_back_leaves_nothing_to_wait_for():
    pool = ActorPool(Ray(), [Actor()])
    first, second = Generator("a"), Generator("b1", "b2")
    pool.add(["a.jpg"], first)
    unit, scored = pool.next_scored()
    assert (unit.sources, scored) == (["a.jpg"], {"scored": "a"})
    assert len(pool) == 1  # its end not seen yet: it may still give a block

    first.ended = True
    assert pool.next_scored() is None and len(pool) == 0

    pool.add(None, second)
    pool.add(["c.jpg"], Generator("c"))
    second.ended = True
    got = [pool.next_scored()[1]["scored"] for _ in range(3)]
    assert got == ["b1", "b2", "c"]  # oldest first, across units
