"""The Wan family: `backend` (the one backend class, configured by the pipeline's flags), then
the TI2V, T2V, I2V and VACE backends over it; `pipeline` holds what every Wan pipeline shares,
`tiny` the random-weight components. Imports nothing, so loading one backend loads no other."""
