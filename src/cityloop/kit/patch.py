"""The one shape of a partial update (PATCH body): a field left out is left as it is, null
clears a field only where the record may hold nothing, and the OpenAPI says which those are.

A null for a field the database keeps NOT NULL used to reach the UPDATE and come back as a 500
(issue 23); some edges instead read it as "leave it". Both are replaced by one rule: such a null
is a 422 naming the field, and the published schema does not offer null there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


class Patch(BaseModel):
    # The fields that may be cleared with null (their columns are nullable).
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_it_may_be_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise PydanticCustomError(
                "null_not_allowed", "may not be null (leave the field out to keep its value)"
            )
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name, prop in target.get("properties", {}).items():
            if name in cls.nullable or "anyOf" not in prop:
                continue
            kinds = [k for k in prop["anyOf"] if k != {"type": "null"}]
            if len(kinds) == 1:
                del prop["anyOf"]
                prop.update(kinds[0])
            else:
                prop["anyOf"] = kinds
            if prop.get("default", ...) is None:
                del prop["default"]
        return schema
