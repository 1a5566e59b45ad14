"""Realistic synthetic data for phasegate: BG/NBD customers, their events and dirty data.

from phasegate.generator import GeneratorConfig, DirtyConfig, generate
result = generate(GeneratorConfig(customers=10_000, out=Path("data/demo")), progress=True)
"""

from .config import DirtyConfig, GeneratorConfig
from .run import GenerateResult, generate

__all__ = ["DirtyConfig", "GenerateResult", "GeneratorConfig", "generate"]
