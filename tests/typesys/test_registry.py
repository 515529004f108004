"""The explicit registry: plugin types, coercions, validators and the catalog."""

from __future__ import annotations

import pytest

from typesys import BYTES, FLOAT, INT, STRING, TypeRegistry, is_assignable, parse


def test_default_returns_a_new_registry_each_time() -> None:
    a = TypeRegistry.default()
    b = TypeRegistry.default()
    a.register_type("Image", BYTES)
    assert a.nominal("Image") is not None
    assert b.nominal("Image") is None
    assert len(a.coercions()) == len(b.coercions()) > 0


def test_register_type_rules() -> None:
    registry = TypeRegistry.default()
    image = registry.register_type("Image", BYTES, description="encoded image")
    assert registry.register_type("Image", BYTES) == image  # idempotent for reloading plugins
    with pytest.raises(ValueError, match="already registered with parent Bytes"):
        registry.register_type("Image", STRING)
    with pytest.raises(ValueError, match="built-in type name"):
        registry.register_type("List", BYTES)
    with pytest.raises(ValueError, match="type variable"):
        registry.register_type("T", BYTES)
    assert registry.nominal_types() == (image,)
    assert registry.description("Image") == "encoded image"


def test_registering_clears_the_assignability_cache() -> None:
    registry = TypeRegistry.default()
    assert registry.is_assignable(INT, FLOAT).ok is False
    assert registry.cache_info().currsize == 1
    registry.register_type("Celsius", FLOAT)
    assert registry.cache_info().currsize == 0


def test_explicit_rules_must_name_a_node() -> None:
    registry = TypeRegistry()
    with pytest.raises(ValueError, match="must name its conversion node"):
        registry.add_coercion(STRING, INT, int, kind="explicit", cost=10)
    with pytest.raises(ValueError, match="cost"):
        registry.add_coercion(STRING, INT, int, kind="implicit", cost=-1)


def test_empty_registry_has_no_rules_but_subtyping_still_works() -> None:
    registry = TypeRegistry()
    assert registry.coercions() == ()
    assert is_assignable(parse("List[Int]"), parse("List[Number]"), registry)


def test_catalog_lists_types_parents_and_rules() -> None:
    registry = TypeRegistry.default()
    registry.register_type("Image", BYTES, description="encoded image")
    catalog = registry.catalog()
    primitives = {p["name"]: p["parents"] for p in catalog["primitives"]}
    assert primitives["Int"] == ["Number"]
    assert primitives["Bool"] == ["Any"]
    assert catalog["nominal"] == [{"name": "Image", "parent": "Bytes", "description": "encoded image"}]
    rules = {(r["source"], r["target"]): r for r in catalog["coercions"]}
    assert rules["Int", "Float"]["kind"] == "implicit"
    assert rules["String", "Int"]["node"] == "builtin/to_int@1"
    assert rules["Float", "Int"]["kind"] == "explicit"


def test_registry_and_coercions_pickle_for_ray_workers() -> None:
    import pickle

    registry = TypeRegistry.default()
    registry.register_type("Image", BYTES)
    registry.is_assignable(INT, FLOAT)
    copy = pickle.loads(pickle.dumps(registry))
    assert copy.nominal("Image") == registry.nominal("Image")
    assert copy.cache_info().currsize == 0
    assert copy.is_assignable(parse("Image", copy), BYTES)
    from typesys import find_coercion

    coercion = find_coercion(parse("String"), INT, registry)
    assert coercion is not None
    assert pickle.loads(pickle.dumps(coercion)).apply("12") == 12


def test_validators_for_keeps_only_what_checking_those_types_calls() -> None:
    import pickle

    from typesys import ModelType, NominalType, TypeRegistry, parse

    registry = TypeRegistry.default()
    email = registry.register_type("Email", parse("String"), validator=_has_at)
    work = registry.register_type("WorkEmail", email)
    registry.add_validator(ModelType(None), _is_model)
    assert registry.validators_for([parse("Int"), parse("List[String]")]) is None
    slim = registry.validators_for([parse("List[Int]"), NominalType("WorkEmail", email)])
    assert slim is not None and slim.validator(email) is _has_at and slim.validator(work) is None
    assert slim.coercions() == () and set(slim.validators()) == {email}
    model = registry.validators_for([ModelType("sklearn")])
    assert model is not None and model.validator(ModelType(None)) is _is_model
    assert pickle.loads(pickle.dumps(slim)).validator(email) is _has_at
    assert TypeRegistry().validators_for([email]) is None


def _has_at(value: object) -> bool:
    return "@" in str(value)


def _is_model(value: object) -> bool:
    return value is not None
