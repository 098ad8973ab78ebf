"""protocol.token.decide against an independent model of the rules in DESIGN.md
section 4 and docs/PROTOCOL.md ("The access decision"), over random claims,
times, clock states and revocation states; plus the property revocation relies
on: once an entry is pruned, no token it covered can be accepted again.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import reasons
from protocol import revocation as rev
from protocol import token as tok

DAY = 24 * 3600  # a token lives at most one shift
SKEW = 120  # two minutes either way
LOCKS = ["lock-1", "lock-2", "gate"]
STAFF = ["anna", "bo", "cecilia"]
CTIS = [b"t1", b"t2", b"t3"]
ACTIONS = ["open", "log", "admin"]
ISSUER = "site"

# The order in which the rules are checked: the first broken one is the reason.
ORDER = [reasons.WRONG_ISSUER, reasons.WRONG_LOCK, reasons.MALFORMED,
         reasons.LIFETIME_TOO_LONG, reasons.ISSUED_BEFORE_CUTOFF, reasons.REVOKED,
         reasons.SCOPE, reasons.NOT_YET_VALID, reasons.EXPIRED, reasons.CLOCK_UNTRUSTED]


def model(c, lock_id, now, trusted, rl, action, issuer):
    broken = set()
    if issuer is not None and c.iss != issuer:
        broken.add(reasons.WRONG_ISSUER)
    if lock_id not in c.aud:
        broken.add(reasons.WRONG_LOCK)
    if not c.nbf < c.exp:
        broken.add(reasons.MALFORMED)
    if c.exp - c.nbf > DAY or c.exp - c.iat > DAY:
        broken.add(reasons.LIFETIME_TOO_LONG)
    if rl is not None:
        if rl.cutoff and c.iat < rl.cutoff:
            broken.add(reasons.ISSUED_BEFORE_CUTOFF)
        if c.cti in rl.tokens or c.iat < rl.staff.get(c.sub, -10 ** 12):
            broken.add(reasons.REVOKED)
    if action not in c.scope:
        broken.add(reasons.SCOPE)
    if now < c.nbf - SKEW or (trusted and now < c.iat - SKEW):
        broken.add(reasons.NOT_YET_VALID)
    if now >= c.exp + SKEW:
        broken.add(reasons.EXPIRED)
    if not trusted and action != "open":
        broken.add(reasons.CLOCK_UNTRUSTED)
    for r in ORDER:
        if r in broken:
            return r
    return reasons.ALLOW


T0 = 200_000_000  # lock seconds (2026)
offsets = st.integers(-3 * DAY, 3 * DAY)


@st.composite
def claims(draw):
    iat = T0 + draw(offsets)
    nbf = iat + draw(st.one_of(st.integers(-600, 600), st.integers(-2 * DAY, 2 * DAY)))
    exp = nbf + draw(st.one_of(st.integers(-10, 10), st.integers(1, DAY + 10),
                               st.sampled_from([DAY - 1, DAY, DAY + 1])))
    aud = tuple(draw(st.lists(st.sampled_from(LOCKS), min_size=1, max_size=3)))
    scope = tuple(draw(st.lists(st.sampled_from(ACTIONS), max_size=3)))
    iss = draw(st.sampled_from([ISSUER, ISSUER, "other"]))
    cti = draw(st.sampled_from(CTIS))
    return tok.Claims(iss, draw(st.sampled_from(STAFF)), aud, exp, nbf, iat, cti, scope, cti)


@st.composite
def revocation_lists(draw):
    if draw(st.booleans()):
        return None
    cutoff = draw(st.one_of(st.just(0), st.integers(T0 - 3 * DAY, T0 + 3 * DAY)))
    staff = draw(st.dictionaries(st.sampled_from(STAFF), st.integers(T0 - 3 * DAY, T0 + 3 * DAY)))
    tokens = draw(st.dictionaries(st.sampled_from(CTIS), st.integers(T0 - 3 * DAY, T0 + 3 * DAY)))
    return rev.RevocationList(draw(st.integers(0, 9)), T0, cutoff, staff, tokens)


def near(c):
    # Times that hit the window edges as well as anywhere.
    return st.one_of(
        st.integers(T0 - 4 * DAY, T0 + 4 * DAY),
        st.sampled_from([c.nbf - SKEW - 1, c.nbf - SKEW, c.nbf, c.exp - 1, c.exp,
                         c.exp + SKEW - 1, c.exp + SKEW]))


@settings(max_examples=800, deadline=None)
@given(st.data())
def test_decide_matches_model(data):
    c = data.draw(claims())
    now = data.draw(near(c))
    trusted = data.draw(st.booleans())
    rl = data.draw(revocation_lists())
    action = data.draw(st.sampled_from(ACTIONS))
    lock_id = data.draw(st.sampled_from(LOCKS))
    issuer = data.draw(st.sampled_from([ISSUER, None]))
    expected = model(c, lock_id, now, trusted, rl, action, issuer)
    assert tok.decide(c, lock_id, now, trusted, rl, action, issuer) == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_allow_means_every_rule_holds(data):
    c = data.draw(claims())
    now = data.draw(near(c))
    rl = data.draw(revocation_lists())
    action = data.draw(st.sampled_from(ACTIONS))
    trusted = data.draw(st.booleans())
    if tok.decide(c, "lock-1", now, trusted, rl, action, ISSUER) != reasons.ALLOW:
        return
    assert c.iss == ISSUER and "lock-1" in c.aud and action in c.scope
    assert c.nbf - SKEW <= now < c.exp + SKEW and 0 < c.exp - c.nbf <= DAY
    assert c.exp - c.iat <= DAY
    assert not trusted or c.iat - SKEW <= now  # issued in the future: not yet
    assert trusted or action == "open"
    if rl is not None:
        assert rl.check(c) == reasons.ALLOW


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_pruned_entries_never_readmit_a_token(data):
    # A staff key revoked with cut-off T (or a single token revoked): after any
    # later prune the covered token is still refused, whatever the time.
    iat = T0
    # Windows starting soon after issue, and long after it (a token issued a day ahead).
    nbf = iat + data.draw(st.one_of(st.integers(-600, 2 * DAY),
                                    st.sampled_from([DAY - 1, DAY, DAY + 1, 2 * DAY])))
    exp = nbf + data.draw(st.one_of(st.integers(1, DAY), st.sampled_from([1, 3600, DAY])))
    c = tok.Claims(ISSUER, "anna", ("lock-1",), exp, nbf, iat, b"t1", ("open", "log"), b"t1")
    cutoff = c.iat + data.draw(st.integers(1, DAY))  # the token was issued before T
    if data.draw(st.booleans()):
        rl = rev.RevocationList(1, cutoff, 0, {}, {c.cti: c.exp})
    else:
        rl = rev.RevocationList(1, cutoff, 0, {c.sub: cutoff}, {})
    spent = DAY + SKEW  # when the lock drops a staff entry
    prune_at = data.draw(st.one_of(st.integers(cutoff, cutoff + 3 * DAY),
                                   st.sampled_from([cutoff + DAY + 1, cutoff + spent,
                                                    cutoff + spent + 1, c.exp + SKEW - 1,
                                                    c.exp + SKEW, c.exp + SKEW + 1])))
    rl.prune(prune_at)
    # Any time from the prune on, and in particular inside the token's window.
    now = data.draw(st.one_of(st.integers(prune_at, prune_at + 3 * DAY),
                              st.integers(max(prune_at, nbf - SKEW), max(prune_at, exp + SKEW))))
    for action in ("open", "log"):
        assert tok.decide(c, "lock-1", now, True, rl, action, ISSUER) != reasons.ALLOW


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_overflow_never_fails_open(data):
    # An update with more entries than the lock keeps: every token an entry
    # covered stays refused after apply (the site-wide cut-off takes over).
    issued = T0 + data.draw(st.integers(0, DAY))
    n = rev.MAX_ENTRIES + data.draw(st.integers(1, 10))
    staff = {"s%d" % i: issued - data.draw(st.integers(0, DAY // 2)) for i in range(n)}
    update = rev.RevocationList(2, issued, 0, dict(staff), {})
    new = rev.apply(rev.RevocationList(1, issued - DAY), update, issued)
    assert len(new) <= rev.MAX_ENTRIES
    sub = data.draw(st.sampled_from(sorted(staff)))
    iat = staff[sub] - data.draw(st.integers(1, DAY))  # covered: issued before its cut-off
    c = tok.Claims(ISSUER, sub, ("lock-1",), iat + DAY, iat, iat, b"x", ("open",), b"x")
    assert new.check(c) != reasons.ALLOW
