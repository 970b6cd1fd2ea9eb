"""Tests of the model package: real tiny models, no mocks."""
