"""Experiment configs: one module per preset / experiment, each with `get_config()`.

Installed as `ebm_zoo.configs`. `--model=<alias>` on the command line picks the family's
default CPU config from ALIASES; any module name below is accepted too.
"""

# --model alias -> config module used when no other flag is given (CPU-sized, shipped data).
ALIASES = {
    "descriptor": "descriptor_texture",
    "multigrid": "multigrid_cpu",
    "multigrid_cd": "multigrid_cd_cpu",
    "multigrid_pcd": "multigrid_pcd_cpu",
    "wgcn": "wgcn_cpu",
    "ggcn": "ggcn_cpu",
    "vapo": "vapo_cpu",
    "short_run": "short_run_digits",
    "energy_matching": "energy_matching_mnist",
}
