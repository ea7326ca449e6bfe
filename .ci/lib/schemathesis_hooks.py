"""schemathesis hooks of .ci/schemathesis, loaded through SCHEMATHESIS_HOOKS.

Two of schemathesis's default checks ask for something the contract (API.md) rules
out in one precise case each. .ci/schemathesis excludes them and runs these copies,
which call the original and let through that case and nothing else; each says why.
"""

import schemathesis
from schemathesis.specs.openapi.checks import ensure_resource_availability, positive_data_acceptance


@schemathesis.check
def positive_data_acceptance_except_unknown_user(ctx, response, case):
    """positive_data_acceptance: a request the schema calls valid must not be refused as
    invalid. Exceptions, both refusals that depend on what earlier requests did, which
    no schema can say:
    - POST /orders answers 422 `unknown_user` to a well-formed user_id that names no
      user (API.md);
    - POST /users and POST /orders answer 422 `idempotency_key_reused` to a request whose
      `Idempotency-Key` was used before for another body or the other path (API.md,
      "Safe retries"): schemathesis draws keys from a small alphabet and sends the same
      one with different bodies.
    - any operation answers 400 to a path or query integer written as a number with a
      fraction (`/users/1.0`): JSON Schema counts 1.0 as an integer, but in a URL the
      contract (API.md, "Input rules") takes decimal digits only, so that one resource
      has one URL. OpenAPI cannot say "an integer written canonically" without giving
      up the integer type.
    Any other refusal of valid data, such as 422 `validation_failed` for a value the
    schema allows and the rules refuse, still fails.

    Not schema-valid to begin with, though schemathesis 4.32.5 labels it positive: a case
    of the coverage phase ("Near-boundary length string" of the `Idempotency-Key` header)
    whose body component was generated in negative mode (the body `0`). Its 400 is right."""
    if case.meta is not None and any(info.mode.is_negative for info in case.meta.components.values()):
        return None
    if response.status_code == 400 and _url_integer_with_a_fraction(case):
        return None
    if response.status_code == 422 and case.operation.method.upper() == "POST":
        code = _error_code(response)
        if case.operation.path == "/orders" and code == "unknown_user":
            return None
        if code == "idempotency_key_reused" and _has_idempotency_key(case):
            return None
    return positive_data_acceptance(ctx, response, case)


def _url_integer_with_a_fraction(case):
    values = list((case.path_parameters or {}).values()) + list((case.query or {}).values())
    return any(isinstance(value, float) for value in values)


def _has_idempotency_key(case):
    return any(name.lower() == "idempotency-key" for name in (case.headers or {}))


@schemathesis.check
def ensure_resource_availability_except_orders_of_deleted_users(ctx, response, case):
    """ensure_resource_availability: a resource just created must be found (404 fails)
    unless the same scenario deleted it. schemathesis counts only a DELETE of the
    resource's own path as its deletion, but DELETE /users/{id} deletes all of that
    user's orders too (API.md). Exception: an order created by POST /orders in this
    scenario, whose user a later successful DELETE /users/{id} in the same scenario
    deleted. Also: a creation answered `Idempotent-Replayed: true` is the stored answer of
    an earlier creation with the same `Idempotency-Key` (API.md, "Safe retries"), which
    the scenario may have deleted since; a replay creates nothing. Any other created
    resource that is not found still fails."""
    try:
        return ensure_resource_availability(ctx, response, case)
    except AssertionError:
        if _order_deleted_with_its_user(ctx, case) or _created_by_a_replay(ctx, case):
            return None
        raise


def _error_code(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _created_by_a_replay(ctx, case):
    parent = ctx.internals.find_parent(case_id=case.id)
    if parent is None or parent.operation.method.upper() != "POST":
        return False
    created = ctx.internals.find_response(case_id=parent.id)
    if created is None or created.status_code != 201:
        return False
    # schemathesis keeps response headers with lower-case names and lists of values.
    return created.headers.get("idempotent-replayed") == ["true"]


def _order_deleted_with_its_user(ctx, case):
    if not case.operation.path.startswith("/orders/"):
        return False
    parent = ctx.internals.find_parent(case_id=case.id)
    if parent is None or parent.operation.method.upper() != "POST" or parent.operation.path != "/orders":
        return False
    created = ctx.internals.find_response(case_id=parent.id)
    if created is None or created.status_code != 201:
        return False
    try:
        user_id = created.json()["user_id"]
    except (ValueError, KeyError, TypeError):
        return False
    recorder = ctx.internals.recorder
    if recorder is None:
        return False
    created_at = _sent_at(recorder, parent.id)
    for prior in recorder.find_all_cases():
        if prior.operation.method.upper() != "DELETE" or prior.operation.path != "/users/{id}":
            continue
        if str((prior.path_parameters or {}).get("id")) != str(user_id):
            continue
        deleted = recorder.find_response(case_id=prior.id)
        # After the order was created: an earlier user of the same id is not its user.
        if deleted is not None and 200 <= deleted.status_code < 300 and _sent_at(recorder, prior.id) > created_at:
            return True
    return False


def _sent_at(recorder, case_id):
    interaction = recorder.interactions.get(case_id)
    return interaction.timestamp if interaction is not None else float("-inf")
