"""Load tests (Locust) and capacity planning (Erlang C) for paddock; see loadtests/README.md."""
