"""engines.ray_plan: the pool fits the nodes and GPUs, a pool the cluster cannot place is a
usage error, blocks feed every actor."""

import pytest


@pytest.mark.parametrize(
    "nodes, actors, threads, expected",
    [
        ([2], None, 0, (1, 1, 2, 3)),  # this machine: one actor on all cores, decode in between
        ([4], None, 0, (1, 3, 4, 3)),
        ([16, 16], None, 0, (6, 4, 4, 20)),  # big nodes: 4-CPU actors, a fifth left for decoding
        ([16], 2, 0, (2, 4, 4, 12)),  # --ray-actors fixes the pool
        ([16], None, 2, (3, 4, 2, 10)),  # --threads wins
        ([2], 2, 0, (2, 0.5, 1, 5)),  # more actors than fit beside a decoding CPU: a share each
        ([16], 5, 0, (5, 3.0, 3, 11)),
    ],
)
def test_plan_fits_actors_to_the_nodes(nodes, actors, threads, expected):
    from resnet_cli.engines.ray_plan import Plan

    plan = Plan.for_cluster(nodes, 32, actors, threads)
    assert (plan.actors, plan.cpus_per_actor, plan.threads, plan.window) == expected
    assert plan.gpus_per_actor == 0


def test_plan_puts_one_actor_on_each_gpu():
    from resnet_cli.engines.ray_plan import Plan

    plan = Plan.for_cluster([16, 16], 32, gpus=4)
    assert (plan.actors, plan.cpus_per_actor, plan.gpus_per_actor) == (4, 1, 1)
    assert plan.window == 2 * 4 + 28  # every CPU but the actors' decodes


def test_a_pool_the_cluster_cannot_place_is_a_usage_error():
    from resnet_cli.engines.ray_plan import ACTOR_MEMORY, Plan, fit
    from resnet_cli.errors import UsageProblem

    gpus = Plan.for_cluster([16], 32, actors=3, gpus=1)
    with pytest.raises(
        UsageProblem,
        match=r"^--ray-actors 3: the cluster has 1 GPU \(one actor each\), room for 1\. Received: --ray-actors 3$",
    ):
        fit(gpus, {"CPU": 16, "GPU": 1, "memory": 64 * 2**30}, 16, asked=True)
    small = {"CPU": 64, "memory": 2.5 * ACTOR_MEMORY}
    with pytest.raises(
        UsageProblem, match=r"the cluster has 2\.5 GiB of memory for tasks \(1 GiB per actor\), room for 2"
    ):
        fit(Plan.for_cluster([64], 32, actors=5), small, 64, asked=True)
    ours = fit(Plan.for_cluster([64], 32), small, 64, asked=False)  # a pool of our choosing shrinks to fit
    assert ours.actors == 2


def test_blocks_are_big_for_big_runs_and_feed_every_actor_in_small_ones():
    from resnet_cli.engines.ray_plan import ROWS_PER_TASK, Plan

    plan = Plan(batch_size=32, actors=3)
    assert plan.blocks(100_000) == -(-100_000 // ROWS_PER_TASK)  # few tasks for the driver to run
    assert plan.blocks(200) == 7  # a batch each: every actor gets work
    assert plan.blocks(3000) == 12  # four blocks per actor
    assert plan.blocks(1) == 1
