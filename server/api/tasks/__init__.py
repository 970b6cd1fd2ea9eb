"""The task endpoints (API.md §1): thin routes over `TaskService`."""
