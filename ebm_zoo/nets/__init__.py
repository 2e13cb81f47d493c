"""Networks: energy ConvNets, generators / learned up-samplers, the VAPO U-Net."""
