"""Base classes of the generated models.

Sent models reject unknown keyword arguments, so a typo fails at
construction instead of being silently dropped. Received models ignore fields
the spec does not list yet, so a server that has moved ahead of the spec does
not break the client. Both are built by Python field name (``digital_id``) and
read and written by the spec's name (``digitalId``). Validators are built on
first use, not at import, so ``import svarut`` stays quick.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)
