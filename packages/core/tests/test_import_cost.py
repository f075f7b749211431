"""``import satchel`` leaves plugins, distribution metadata and the email package to first
use, and what replaced them behaves as they did."""

from __future__ import annotations

import email.utils
import subprocess
import sys

from hypothesis import example, given
from hypothesis import strategies as st
from satchel._cookies import CookieAttributes, format_http_date

DEFERRED = ("pluggy", "importlib.metadata", "email.utils", "email")


def fresh(code: str) -> str:
    """Run ``code`` in a new interpreter; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_satchel_loads_no_plugin_machinery() -> None:
    loaded = fresh(f"import sys, satchel; print(sorted(m for m in {DEFERRED!r} if m in sys.modules))")
    assert loaded == "[]"


def test_plugins_load_on_first_use_in_a_fresh_interpreter() -> None:
    out = fresh(
        "import sys, satchel\n"
        "storage = satchel.open_storage('memory://')\n"
        "names = sorted(p.distribution for p in satchel.installed_plugins())\n"
        "print(type(storage).__name__, 'pluggy' in sys.modules, 'satchel-sqlite' in names)"
    )
    assert out == "MemoryStorage True True"


def test_hookimpl_marks_as_pluggy_does_before_the_registry_exists() -> None:
    # A plugin module marks its hook when it is imported; the marker builds pluggy's then.
    out = fresh(
        "import sys, satchel\n"
        "assert 'pluggy' not in sys.modules\n"
        "@satchel.hookimpl\n"
        "def satchel_register(registry): pass\n"
        "@satchel.hookimpl(tryfirst=True)\n"
        "def first(registry): pass\n"
        "import pluggy\n"
        "expected = pluggy.HookimplMarker('satchel')\n"
        "def plain(registry): pass\n"
        "def tried(registry): pass\n"
        "expected(plain); expected(tryfirst=True)(tried)\n"
        "print(satchel_register.satchel_impl == plain.satchel_impl, first.satchel_impl == tried.satchel_impl,"
        " first.satchel_impl['tryfirst'])"
    )
    assert out == "True True True"


# Unix seconds from before 1901 to the last second of year 9999, with fractions.
timestamps = st.one_of(
    st.integers(min_value=-(2**31), max_value=253_402_300_799),
    st.floats(min_value=-(2**31), max_value=253_402_300_799, allow_nan=False),
)


@given(timestamps)
@example(0)
@example(59.9999999)  # rounds up to the next second, as datetime.fromtimestamp does
@example(-0.5)
@example(951_782_400)  # 2000-02-29
@example(253_402_300_799)
def test_expires_date_is_byte_identical_to_email_utils(at: float) -> None:
    assert format_http_date(at) == email.utils.formatdate(at, usegmt=True)


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=4e9), st.integers(min_value=0, max_value=10**7), st.booleans()
        ),
        min_size=1,
        max_size=8,
    )
)
def test_set_cookie_reuses_its_last_tail_only_for_the_same_second_age_and_secure(
    calls: list[tuple[float, int, bool]],
) -> None:
    # set_cookie keeps the tail it formatted last: each header must still be what a fresh
    # formatting gives, whatever the order of times, ages and Secure
    cookie = CookieAttributes(
        "SID", path="/", domain=None, secure=None, http_only=True, same_site="lax", partitioned=False
    )
    for now, age, secure in calls:
        expires = email.utils.formatdate(int(now) + age, usegmt=True)
        flag = "; Secure" if secure else ""
        expected = f"SID=v; Max-Age={age}; Expires={expires}; Path=/; HttpOnly; SameSite=Lax{flag}"
        assert cookie.set_cookie("v", age + 0.5, now, secure) == expected.encode()
