"""`paddock plan`: calibrate on a running stack, simulate paddock's scheduling policy, recommend
the cheapest fleet that meets an SLO, and check the predictions against load tests."""
