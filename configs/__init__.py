"""Experiment configs: one module per preset / experiment, each with `get_config()`.

Installed as `ebm_zoo.configs`. `--model=<alias>` on the command line picks the family's
default CPU config; the aliases are registered by each family folder (`register_family(...,
aliases=...)` in ebm_zoo/models/<family>/__init__.py). Any module name below is accepted too.
"""


def __getattr__(name: str):
    if name == "ALIASES":  # --model alias -> config module, from the family registrations
        from ebm_zoo.models.registry import config_aliases

        return config_aliases()
    raise AttributeError(f"module 'ebm_zoo.configs' has no attribute {name!r}")
