"""rayweave typesys: the port type language.

Types, subtyping, generics, unions, coercions, runtime checks and JSON Schema for node ports. Pure Python:
imports nothing else of the project and no Ray; pyarrow, numpy and pydantic are imported only when a value
or annotation is one of theirs.
"""

from typesys.annotations import from_annotation
from typesys.check import check
from typesys.coerce import Coercion, CoercionStep, find_coercion
from typesys.errors import (
    AnnotationError,
    CoercionError,
    TypeCheckError,
    TypeParseError,
    TypesysError,
    TypeTooDeepError,
    UnificationError,
)
from typesys.jsonio import from_json, to_json
from typesys.parse import parse
from typesys.registry import CoercionRule, TypeRegistry
from typesys.schema import json_schema
from typesys.subtype import Assignability, is_assignable
from typesys.types import (
    ANY,
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NULL,
    NUMBER,
    STRING,
    DictType,
    Field,
    ListType,
    ModelType,
    NDArrayType,
    NominalType,
    Primitive,
    RecordType,
    TableType,
    TupleType,
    Type,
    TypeVar,
    UnionType,
    optional,
    union,
)
from typesys.unify import Substitution, free_vars, substitute, unify
from typesys.wording import with_article

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "FLOAT",
    "INT",
    "NULL",
    "NUMBER",
    "STRING",
    "AnnotationError",
    "Assignability",
    "Coercion",
    "CoercionError",
    "CoercionRule",
    "CoercionStep",
    "DictType",
    "Field",
    "ListType",
    "ModelType",
    "NDArrayType",
    "NominalType",
    "Primitive",
    "RecordType",
    "Substitution",
    "TableType",
    "TupleType",
    "Type",
    "TypeCheckError",
    "TypeParseError",
    "TypeRegistry",
    "TypeTooDeepError",
    "TypeVar",
    "TypesysError",
    "UnificationError",
    "UnionType",
    "check",
    "find_coercion",
    "free_vars",
    "from_annotation",
    "from_json",
    "is_assignable",
    "json_schema",
    "optional",
    "parse",
    "substitute",
    "to_json",
    "unify",
    "union",
    "with_article",
]
