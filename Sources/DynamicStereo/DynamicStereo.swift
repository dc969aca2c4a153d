// DynamicStereo module.
