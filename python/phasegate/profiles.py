"""Reads the dbt profile so Python jobs talk to the same warehouse dbt builds into."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from phasegate.errors import ConfigError


@dataclass(frozen=True)
class WarehouseTarget:
    name: str
    type: str
    settings: dict

    @property
    def schema(self) -> str:
        return self.settings.get("schema", "main")


def _env_var(name: str, default: str | None = None) -> str:
    if name in os.environ:
        return os.environ[name]
    if default is None:
        raise ConfigError(f"profiles.yml needs environment variable {name}; set it or give a default")
    return default


def _render(value):
    if isinstance(value, str) and "{{" in value:
        env = jinja2.Environment()
        env.filters["as_number"] = lambda v: int(v) if str(v).isdigit() else float(v)
        env.filters["as_bool"] = lambda v: str(v).lower() in ("1", "true", "yes")
        env.filters["as_text"] = str
        return env.from_string(value).render(env_var=_env_var)
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    return value


def profiles_dir(project_dir: Path) -> Path:
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"])
    if (project_dir / "profiles.yml").exists():
        return project_dir
    return Path.home() / ".dbt"


def load_target(project_dir: Path, target: str | None = None) -> WarehouseTarget:
    project_file = project_dir / "dbt_project.yml"
    if not project_file.exists():
        raise ConfigError(f"no dbt_project.yml in {project_dir}; pass --project-dir")
    profile_name = yaml.safe_load(project_file.read_text()).get("profile")
    path = profiles_dir(project_dir) / "profiles.yml"
    if not path.exists():
        raise ConfigError(f"no profiles.yml found at {path}; set DBT_PROFILES_DIR")
    profiles = yaml.safe_load(path.read_text()) or {}
    if profile_name not in profiles:
        raise ConfigError(f"profile '{profile_name}' is not in {path}")
    profile = profiles[profile_name]
    name = target or os.environ.get("DBT_TARGET") or _render(profile.get("target", "dev"))
    outputs = profile.get("outputs", {})
    if name not in outputs:
        raise ConfigError(f"target '{name}' is not in profile '{profile_name}' ({', '.join(outputs)})")
    settings = _render(outputs[name])
    return WarehouseTarget(name=name, type=settings["type"], settings=settings)
