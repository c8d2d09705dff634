"""The iterative DPO job's config: the Ray-free run config (`cotgen.train.dpo.config.DPOConfig`) and
the cluster its rounds' sampling sweeps run on."""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgen.sweep.config import ClusterConfig
from cotgen.train.dpo.config import DPOConfig


@dataclass
class DPOJobConfig(DPOConfig):
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """The sampling sweep's actors (and the Ray address to join)."""
