"""The OpenAI-style Videos surface (`POST /v1/videos`, retrieve, list, delete, remix, content): the
same tasks as the DashScope surface, in OpenAI's shapes (`wire`), created through a translation to
DashScope create bodies (`translate`)."""
