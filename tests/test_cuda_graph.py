"""The task's CUDA graphs (common/cuda_graph.py) give what the same torch work gives issued op by op.
They exist only on a CUDA device: on the CPU (CI) these tests are skipped; run them on the GPU machine."""
import pytest
import torch

from common.cuda_graph import GraphedCall
from physics.terrain import KINDS, Terrain, TerrainParams

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def inputs(n: int, seed: int, device: str = "cuda"):
    g = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, len(KINDS), (n,), generator=g).to(device)
    level = torch.randint(0, 5, (n,), generator=g).to(device)
    xy = (torch.rand((n, 2), generator=g) * 40.0 - 20.0).to(device)
    return kind, level, xy


@cuda
def test_a_graphed_function_replays_the_eager_result_for_new_inputs():
    terrain = Terrain(TerrainParams(window=3.9))
    ground = lambda kind, level, xy: terrain.ground(kind, level.float() / 4, xy)  # noqa: E731
    graphed = GraphedCall(ground)
    first = graphed(*inputs(256, 0))
    graph = graphed.graph
    for seed in (1, 2, 3):  # new values: the same graph, replayed
        args = inputs(256, seed)
        assert torch.equal(graphed(*args), ground(*args))
    assert graphed.graph is graph and first is graphed.output
    args = inputs(64, 4)  # another shape: captured again
    assert torch.equal(graphed(*args), ground(*args)) and graphed.graph is not graph


@cuda
def test_the_graphed_layout_writes_the_eager_layout_into_the_fields():
    terrain = Terrain(TerrainParams(window=3.9))
    n, m = 128, terrain.num_boxes + 1
    geoms = torch.arange(m, device="cuda") + 3  # the terrain's geoms among others
    fields = lambda: {"geom_pos": torch.zeros(n, m + 5, 3, device="cuda"),  # noqa: E731
                      "geom_size": torch.zeros(n, m + 5, 3, device="cuda"),
                      "geom_rbound": torch.zeros(n, m + 5, device="cuda"),
                      "geom_aabb": torch.zeros(n, m + 5, 6, device="cuda")}
    graphed_fields, eager_fields = fields(), fields()
    place = GraphedCall(lambda kind, level, xy: terrain.place(graphed_fields, geoms, kind, level.float() / 4, xy))
    for seed in (0, 1, 2):
        kind, level, xy = inputs(n, seed)
        place(kind, level, xy)
        terrain.place(eager_fields, geoms, kind, level.float() / 4, xy)
        for name in eager_fields:
            assert torch.equal(graphed_fields[name], eager_fields[name]), name
    assert float(graphed_fields["geom_size"][:, 4:].abs().sum()) > 0  # boxes were laid out


@cuda
def test_the_task_on_rough_ground_steps_with_its_graphs_as_without():
    from tasks import isaacgym_task_map
    from tests.conftest import compose_config
    from runner.config import to_dict

    def run(enabled: bool):
        GraphedCall.enabled = enabled
        try:
            torch.manual_seed(0)
            cfg = compose_config("task=NeuroMechFly", "sim_device=cuda:0", "rl_device=cuda:0", "num_envs=8",
                                 "task.env.terrain.type=curriculum", "task.env.randomization.enabled=False",
                                 "task.env.asymmetricCritic=True")  # its states read the surface under the feet
            env = isaacgym_task_map["NeuroMechFly"](cfg=to_dict(cfg.task), rl_device="cuda:0", sim_device="cuda:0",
                                                    graphics_device_id=0, headless=True)
            env.reset()
            for _ in range(5):
                env.step(torch.zeros((8, env.num_actions), device=env.device))
            root_xy = env.state.root_pos[:, :2].clone()
            env.terrain.place(root_xy)
            states, layout = env.states_buf.clone(), env.terrain.fields["geom_pos"].clone()
            # the critic's states and the boxes of this same physics state, again with the graphs off
            GraphedCall.enabled = False
            env.compute_observations()
            env.terrain.place(root_xy)
            out = (env.state.height.clone(), states, env.states_buf.clone(), layout,
                   env.terrain.fields["geom_pos"].clone())
            env.close()
            return out
        finally:
            GraphedCall.enabled = True

    (h1, s1, s1_eager, p1, p1_eager), (h0, _, _, _, _) = run(True), run(False)
    assert torch.allclose(h1, h0, atol=1e-3)
    # Within a run, not across the two: MuJoCo Warp's atomics differ in the last bits between runs, so a tarsal
    # contact near its threshold flips (H100: one world of 8, load 0.26 of the weight apart) and a box layout,
    # which snaps to cells around the fly, can move by a cell (H200: 2026-11-27)
    assert torch.allclose(s1, s1_eager, atol=1e-5) and s1.abs().sum() > 0
    assert torch.equal(p1, p1_eager) and p1.abs().sum() > 0
