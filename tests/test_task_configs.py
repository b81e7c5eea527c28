"""The CycleGAN and U-GAT-IT task configs share one wiring (conf/task/shared/two_domain.yaml)
and differ in their target and their own choices, none of which leaks into the other."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from helpers import CONF, compose_run

# the groups each task selects (command-line and experiment choices win)
CHOICES = {
    "cyclegan": {"data": "facades_unpaired", "model": "resnet9", "discriminator": "patch70",
                 "loss": "cyclegan", "optim": "adam", "scheduler": "linear_decay"},
    "ugatit": {"data": "facades_unpaired", "model": "ugatit", "discriminator": "ugatit",
               "loss": "ugatit", "optim": "adam_ugatit", "scheduler": "linear_decay"},
}  # fmt: skip
# what a task sets on top of its discriminator's file: CycleGAN's paper uses instance norm
DISCRIMINATOR_CHANGES = {"cyclegan": {"norm": "instance"}, "ugatit": {}}


def test_cyclegan_and_ugatit_tasks_differ_only_in_their_target(tmp_path: Path) -> None:
    nodes = {}
    for task in CHOICES:
        cfg = compose_run([f"task={task}"], tmp_path)
        nodes[task] = OmegaConf.to_container(cfg.task)  # unresolved: ${model} stays
    assert next(iter(nodes["cyclegan"].items())) == ("_target_", "pix2pix_lit.tasks.CycleGAN")
    assert next(iter(nodes["ugatit"].items())) == ("_target_", "pix2pix_lit.tasks.UGATIT")
    del nodes["cyclegan"]["_target_"], nodes["ugatit"]["_target_"]
    assert nodes["cyclegan"] == nodes["ugatit"]
    assert nodes["ugatit"]["generator_ba"] == "${model}"
    assert nodes["ugatit"]["discriminator_b"] == "${discriminator}"


@pytest.mark.parametrize("task", list(CHOICES))
def test_a_task_selects_its_own_groups_and_nothing_of_the_others(task: str, tmp_path: Path) -> None:
    cfg = compose_run([f"task={task}"], tmp_path)
    choices = HydraConfig.get().runtime.choices
    assert {group: choices[group] for group in CHOICES[task]} == CHOICES[task]
    assert cfg.task_name == task
    own = OmegaConf.load(CONF / "discriminator" / f"{CHOICES[task]['discriminator']}.yaml")
    expected = {**OmegaConf.to_container(own), **DISCRIMINATOR_CHANGES[task]}
    assert OmegaConf.to_container(cfg.discriminator) == expected
