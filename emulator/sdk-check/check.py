"""Drive auth0-emulator with Auth0's own Python SDK (auth0-python 4.x) and assert what the SDK returns.

The emulator is faithful when a client written by Auth0 gets from it what it would get from a real
tenant. Usage: python check.py http://127.0.0.1:PORT  (run.sh starts the emulator with seed.json).
Each step prints "ok - <step>"; the first failing assertion stops the run with exit status 1.
"""

import io
import json
import re
import sys
import time
import traceback

import requests

from auth0.authentication import GetToken
from auth0.authentication import Users as AuthUsers
from auth0.authentication.token_verifier import AsymmetricSignatureVerifier, TokenVerifier
from auth0.exceptions import Auth0Error, RateLimitError
from auth0.management import Jobs, Users
from auth0.rest import RestClientOptions

SEED = json.load(open(__file__.rsplit("/", 1)[0] + "/seed.json"))
LOGIN = SEED["clients"][0]
MGMT = SEED["clients"][1]
API = SEED["apis"][0]["identifier"]
DB = SEED["connections"][0]
ALICE = SEED["users"][0]

STEPS = 0


def step(name):
    def wrap(fn):
        def run(*args):
            global STEPS
            result = fn(*args)
            STEPS += 1
            print(f"ok - {name}", flush=True)
            return result

        run.__wrapped__ = fn
        return run

    return wrap


def expect_error(call, status, code, message=None):
    """Run call, which must raise Auth0Error with this status, code and (if given) message."""
    try:
        call()
    except Auth0Error as e:
        assert e.status_code == status, f"status {e.status_code} != {status}: {e}"
        assert e.error_code == code, f"error code {e.error_code!r} != {code!r}: {e}"
        if message is not None:
            assert e.message == message, f"message {e.message!r} != {message!r}"
        return e
    raise AssertionError(f"expected a {status} {code} error, the call succeeded")


@step("password-realm login returns Auth0's token envelope and a verifiable ID token")
def login(domain, base):
    gt = GetToken(domain, LOGIN["clientId"], client_secret=LOGIN["clientSecret"], protocol="http")
    tokens = gt.login(
        ALICE["email"],
        ALICE["password"],
        realm=DB["name"],
        scope="openid profile email offline_access",
        audience=API,
    )
    assert tokens["token_type"] == "Bearer", tokens
    assert isinstance(tokens["expires_in"], int) and tokens["expires_in"] > 0, tokens
    for key in ("access_token", "id_token", "refresh_token"):
        assert isinstance(tokens.get(key), str) and tokens[key], f"no {key}: {tokens}"
    assert set(tokens) <= {"access_token", "refresh_token", "id_token", "token_type", "expires_in", "scope"}, tokens
    verifier = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(f"{base}/.well-known/jwks.json"),
        issuer=f"{base}/",
        audience=LOGIN["clientId"],
    )
    claims = verifier.verify(tokens["id_token"])
    assert claims["email"] == ALICE["email"], claims
    info = AuthUsers(domain, protocol="http").userinfo(tokens["access_token"])
    assert info["sub"] == claims["sub"], (info, claims)
    return gt, tokens


@step("refresh rotates the refresh token, and reusing the old one is refused for the whole family")
def refresh(gt, tokens):
    first = tokens["refresh_token"]
    renewed = gt.refresh_token(first)
    assert renewed["token_type"] == "Bearer" and renewed["access_token"], renewed
    second = renewed.get("refresh_token")
    assert second and second != first, f"rotation returned no new refresh token: {renewed}"
    expect_error(lambda: gt.refresh_token(first), 403, "invalid_grant", "Unknown or invalid refresh token.")
    # Reuse detection revokes the family, the newest token included.
    expect_error(lambda: gt.refresh_token(second), 403, "invalid_grant", "Unknown or invalid refresh token.")


@step("a wrong password is 403 invalid_grant 'Wrong email or password.'")
def wrong_password(gt):
    expect_error(
        lambda: gt.login(ALICE["email"], "not-the-password", realm=DB["name"], scope="openid"),
        403,
        "invalid_grant",
        "Wrong email or password.",
    )


@step("client credentials give a Management API token")
def management_token(domain, base):
    gt = GetToken(domain, MGMT["clientId"], client_secret=MGMT["clientSecret"], protocol="http")
    tokens = gt.client_credentials(audience=f"{base}/api/v2/")
    assert tokens["token_type"] == "Bearer" and tokens["access_token"], tokens
    assert isinstance(tokens["expires_in"], int), tokens
    assert "refresh_token" not in tokens and "id_token" not in tokens, tokens
    return tokens["access_token"]


@step("users list with include_totals and a Lucene search")
def list_users(users):
    page = users.list(per_page=2)
    assert set(page) == {"start", "limit", "length", "users", "total"}, page
    assert page["start"] == 0 and page["limit"] == 2, page
    assert page["length"] == len(page["users"]) == 2, page
    assert page["total"] == len(SEED["users"]), page
    last = users.list(page=2, per_page=2)
    assert last["start"] == 4 and last["length"] == len(SEED["users"]) - 4 == len(last["users"]), last
    bare = users.list(include_totals=False)
    assert isinstance(bare, list) and len(bare) == len(SEED["users"]), bare

    found = users.list(q=f'email:"{ALICE["email"].upper()}"', search_engine="v3")
    assert found["total"] == 1 and found["users"][0]["email"] == ALICE["email"], found
    alice = found["users"][0]
    assert alice["user_id"].startswith("auth0|"), alice
    assert alice["identities"][0]["connection"] == DB["name"], alice
    assert "password" not in alice, alice

    q = f'app_metadata.groups:"admins" AND identities.connection:"{DB["name"]}" AND NOT blocked:true'
    admins = users.list(q=q, search_engine="v3")
    expected = sorted(
        u["email"]
        for u in SEED["users"]
        if "admins" in u.get("app_metadata", {}).get("groups", [])
        and u["connection"] == DB["name"]
        and not u.get("blocked", False)
    )
    assert sorted(u["email"] for u in admins["users"]) == expected, (admins, expected)
    wild = users.list(q="email:bob*", search_engine="v3", include_totals=False)
    assert [u["email"] for u in wild] == ["bob@sdk-check.example"], wild
    expect_error(lambda: users.list(q='email:"unterminated', search_engine="v3"), 400, "invalid_query_string")
    expect_error(lambda: users.list(per_page=101), 400, "invalid_query_string")


NEW_USER = {
    "email": "carol@sdk-check.example",
    "password": "Carol-Passw0rd!",
    "connection": "Username-Password-Authentication",
    "given_name": "Carol",
    "app_metadata": {"groups": ["editors"], "plan": "free"},
    "user_metadata": {"theme": "dark", "lang": "en"},
}


@step("create answers 201 with Auth0's user object")
def create(users):
    created = users.create(NEW_USER)
    assert re.fullmatch(r"auth0\|[0-9a-f]{24}", created["user_id"]), created
    assert created["email"] == NEW_USER["email"] and created["given_name"] == "Carol", created
    assert created["email_verified"] is False and created["blocked"] is False, created
    assert created["identities"] == [
        {
            "connection": NEW_USER["connection"],
            "user_id": created["user_id"].split("|", 1)[1],
            "provider": "auth0",
            "isSocial": False,
        }
    ], created
    assert created["app_metadata"] == NEW_USER["app_metadata"], created
    assert "password" not in created, created
    for stamp in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created[stamp]), created
    return created["user_id"]


@step("a duplicate create is 409 auth0_idp_error 'The user already exists.'")
def duplicate(users):
    expect_error(lambda: users.create(NEW_USER), 409, "auth0_idp_error", "The user already exists.")
    expect_error(lambda: users.create({"email": "x@sdk-check.example", "password": "Passw0rd!"}), 400, "invalid_body")


@step("update merges metadata one level deep and null deletes a key")
def update(users, user_id):
    updated = users.update(
        user_id,
        {"nickname": "caz", "app_metadata": {"plan": "pro", "groups": None}, "user_metadata": {"lang": None}},
    )
    assert updated["nickname"] == "caz", updated
    assert updated["app_metadata"] == {"plan": "pro"}, updated
    assert updated["user_metadata"] == {"theme": "dark"}, updated
    assert updated["updated_at"] >= updated["created_at"], updated
    assert users.get(user_id)["nickname"] == "caz"


@step("delete answers 204 and a get of the deleted user is 404 inexistent_user")
def delete(users, user_id):
    assert users.delete(user_id) == "", "a 204 has an empty body"
    expect_error(lambda: users.get(user_id), 404, "inexistent_user", "The user does not exist.")


@step("an import job goes pending -> completed with its summary and per-user errors")
def import_job(jobs, users):
    file = [
        {"email": "dave@sdk-check.example", "email_verified": True, "user_id": "dave-1", "app_metadata": {"groups": ["imported"]}},
        {"email": "erin@sdk-check.example", "given_name": "Erin"},
        {"email": ALICE["email"], "email_verified": True},
        {"email": "not-an-email"},
    ]
    job = jobs.import_users(DB["id"], io.BytesIO(json.dumps(file).encode()), external_id="sdk-check")
    assert re.fullmatch(r"job_[A-Za-z0-9]{16}", job["id"]), job
    assert job["type"] == "users_import" and job["status"] == "pending", job
    assert job["connection_id"] == DB["id"] and job["connection"] == DB["name"], job
    assert job.get("external_id") == "sdk-check", job
    seen = {job["status"]}
    deadline = time.time() + 30
    while job["status"] not in ("completed", "failed"):
        assert time.time() < deadline, f"job still {job['status']} after 30 s"
        time.sleep(0.25)
        job = jobs.get(job["id"])
        seen.add(job["status"])
    assert job["status"] == "completed", job
    assert job["summary"] == {"failed": 2, "updated": 0, "inserted": 2, "total": 4}, job
    assert seen <= {"pending", "processing", "completed"}, seen

    errors = jobs.get_failed_job(job["id"])
    assert isinstance(errors, list) and len(errors) == 2, errors
    by_email = {e["user"]["email"]: e["errors"] for e in errors}
    assert by_email[ALICE["email"]] == [
        {"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}
    ], by_email
    assert [e["code"] for e in by_email["not-an-email"]] == ["FORMAT"], by_email

    dave = users.list(q='email:"dave@sdk-check.example"', search_engine="v3", include_totals=False)
    assert [u["user_id"] for u in dave] == ["auth0|dave-1"], dave
    assert dave[0]["app_metadata"] == {"groups": ["imported"]}, dave

    clean = jobs.import_users(DB["id"], io.BytesIO(b'[{"email": "frank@sdk-check.example"}]'), upsert=True)
    while clean["status"] not in ("completed", "failed"):
        time.sleep(0.25)
        clean = jobs.get(clean["id"])
    assert clean["summary"] == {"failed": 0, "updated": 0, "inserted": 1, "total": 1}, clean
    assert jobs.get_failed_job(clean["id"]) == "", "no errors is a 204 with an empty body"


@step("a third concurrent import is 429, and bad imports get Auth0's 400 and 413")
def import_limits(jobs):
    running = [jobs.import_users(DB["id"], io.BytesIO(f'[{{"email": "g{i}@sdk-check.example"}}]'.encode())) for i in range(2)]
    try:
        jobs.import_users(DB["id"], io.BytesIO(b'[{"email": "h@sdk-check.example"}]'))
        raise AssertionError("a third active import job was accepted")
    except RateLimitError as e:
        assert e.status_code == 429, e
        assert e.message == (
            "There are 2 active import users jobs, please wait until some of them are finished and try again"
        ), e.message
        assert e.reset_at > 0, e.reset_at
    expect_error(
        lambda: jobs.import_users("con_short", io.BytesIO(b"[]")),
        400,
        "invalid_body",
        "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id",
    )
    big = io.BytesIO(b"[" + b" " * 512001 + b"]")
    err = expect_error(lambda: jobs.import_users(DB["id"], big), 413, "Payload Too Large")
    assert err.message == "Payload content length greater than maximum allowed: 512000.", err.message
    for job in running:
        while jobs.get(job["id"])["status"] not in ("completed", "failed"):
            time.sleep(0.25)


def control(base, method, path, body=None):
    """Calls the emulator's control API (not Auth0's; the SDK has no part in it)."""
    response = requests.request(method, f"{base}/__emulator{path}", json=body, timeout=5)
    assert response.ok, f"control API {method} {path}: {response.status_code} {response.text}"
    return response.json() if response.text else None


@step("the control API's token lifetime and 429 mode reach the SDK as Auth0's 401 and RateLimitError")
def control_knobs(domain, base):
    control(base, "PATCH", "/settings", {"managementTokenSeconds": 0})
    try:
        token = GetToken(domain, MGMT["clientId"], client_secret=MGMT["clientSecret"], protocol="http")
        expired = token.client_credentials(audience=f"{base}/api/v2/")["access_token"]
    finally:
        control(base, "PATCH", "/settings", {"managementTokenSeconds": 86400})
    users = Users(domain, expired, protocol="http", rest_options=RestClientOptions(retries=0))
    expect_error(lambda: users.list(), 401, "Unauthorized", "Expired token received for JSON Web Token validation")

    token = management_token.__wrapped__(domain, base)
    users = Users(domain, token, protocol="http", rest_options=RestClientOptions(retries=0))
    reset = int(time.time()) + 120
    control(base, "PUT", "/rate-limit", {"routes": ["/api/v2/*"], "resetAt": reset})
    try:
        users.list()
        raise AssertionError("the 429 mode let a request through")
    except RateLimitError as e:
        assert e.status_code == 429 and e.error_code == "too_many_requests", e
        assert e.message == "Global limit has been reached", e.message
        assert e.reset_at == reset, (e.reset_at, reset)
    finally:
        control(base, "DELETE", "/rate-limit")
    assert users.list(per_page=1)["total"] >= 1


def main():
    base = sys.argv[1].rstrip("/")
    domain = base.split("://", 1)[1]
    gt, tokens = login(domain, base)
    refresh(gt, tokens)
    wrong_password(gt)
    token = management_token(domain, base)
    options = RestClientOptions(retries=0)
    users = Users(domain, token, protocol="http", rest_options=options)
    jobs = Jobs(domain, token, protocol="http", rest_options=options)
    list_users(users)
    user_id = create(users)
    duplicate(users)
    update(users, user_id)
    delete(users, user_id)
    import_job(jobs, users)
    import_limits(jobs)
    control_knobs(domain, base)
    print(f"all {STEPS} steps passed: auth0-python drives the emulator as it drives Auth0")
    # The plain closing line CI reads: this check is the last thing .ci/run runs.
    print(f"{STEPS} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - report any failure as a failed check
        traceback.print_exc()
        print(f"FAILED after {STEPS} passing steps", file=sys.stderr)
        sys.exit(1)
