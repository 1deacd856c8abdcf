"""Who is using this browser session: demo, first-admin set-up, password or OpenID Connect login, time-out, logout."""
from __future__ import annotations

import streamlit as st

from fraudlab.auth import users
from fraudlab.auth.actors import DEMO, Actor, role_label
from fraudlab.auth.permissions import can
from fraudlab.auth.session import auth_settings, expired, login_mode, network_refusal, oidc_actor
from fraudlab.errors import FraudlabError
from fraudlab.text import markdown_literal
from fraudlab.workspace import Workspace, utcnow

KEY = "fraudlab_actor"


def oidc_configured() -> bool:
    """Whether `[auth]` is set in .streamlit/secrets.toml (then st.login offers OpenID Connect)."""
    try:
        return bool(st.secrets.get("auth"))
    except Exception:  # no secrets file at all
        return False


def current_actor(ws: Workspace) -> Actor:
    """The session's proven identity; shows the set-up or login form and stops the page until there is one."""
    oidc = oidc_configured()
    mode = login_mode(ws, oidc)
    actor = st.session_state.get(KEY)
    refusal = network_refusal(st.get_option("server.address"), mode)
    if refusal:
        st.error(refusal)
        st.stop()
    if mode == "demo":
        if not isinstance(actor, Actor):
            actor = st.session_state[KEY] = DEMO
        return actor
    if isinstance(actor, Actor) and actor.via == "demo":
        actor = st.session_state[KEY] = None
    if isinstance(actor, Actor):
        if expired(st.session_state.get("last_seen"), utcnow()):
            st.session_state.pop(KEY, None)
            st.session_state["timed_out"] = True
        else:
            st.session_state["last_seen"] = utcnow()
            return actor
    if oidc and getattr(st.user, "is_logged_in", False):
        actor = oidc_actor(ws, dict(st.user))
        if actor is not None:
            _start(actor)
            return actor
        _hide_pages()
        st.error("You are signed in, but your account has no fraudlab role. Ask an administrator to add you.")
        st.button("Log out", on_click=st.logout)
        st.stop()
    _hide_pages()
    _setup_form(ws) if mode == "setup" else _login_form(ws, oidc)
    st.stop()


def _hide_pages() -> None:
    """Before login the navigation holds no page at all (else the browser keeps the last one's links)."""
    st.navigation([st.Page(lambda: None, title="Log in", url_path="login")], position="hidden")


def _start(actor: Actor) -> None:
    st.session_state[KEY] = actor
    st.session_state["last_seen"] = utcnow()
    st.session_state.pop("timed_out", None)


def _login_form(ws: Workspace, oidc: bool) -> None:
    st.title("fraudlab: log in")
    if st.session_state.get("timed_out"):
        st.info(f"Your session timed out after {auth_settings().session_minutes} minutes without activity. "
                "Please log in again.")
    if oidc:
        st.button("Log in with single sign-on", icon=":material/login:", on_click=st.login, type="primary")
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Log in", icon=":material/login:"):
            try:
                _start(users.authenticate(ws, name.strip(), password))
            except FraudlabError as exc:
                st.error(str(exc))
            else:
                st.rerun()


def _setup_form(ws: Workspace) -> None:
    st.title("fraudlab: create the first admin")
    st.info("This workspace holds more than the bundled sample (or login is required), so every action needs a "
            "person. Create the first administrator account; then log in with it and add your team on the Users page.")
    with st.form("first_admin"):
        name = st.text_input("Admin user name")
        password = st.text_input("Password (at least 10 characters)", type="password")
        again = st.text_input("Password again", type="password")
        if st.form_submit_button("Create the admin account", icon=":material/person_add:"):
            if password != again:
                st.error("The two passwords differ.")
                return
            try:
                users.add_user(ws, None, name.strip(), "admin", password)
            except FraudlabError as exc:
                st.error(str(exc))
            else:
                _start(Actor(name.strip(), "admin", via="password"))
                st.rerun()


def logout_button(actor: Actor) -> None:
    """Sidebar: who is logged in, in which role, and a way out."""
    if actor.via == "demo":
        st.warning("Demo session on the bundled sample: no login. Create an admin "
                   "(`python -m fraudlab users add NAME --role admin`) before loading real data.",
                   icon=":material/info:")
        return
    st.caption(f"Logged in as {markdown_literal(actor.name)} · {role_label(actor.role)}")
    if st.button("Log out", icon=":material/logout:"):
        st.session_state.pop(KEY, None)
        if actor.via == "oidc":
            st.logout()
        st.rerun()


def me() -> Actor:
    """The identity acting in this session (set by the app frame before any page runs)."""
    actor = st.session_state.get(KEY)
    return actor if isinstance(actor, Actor) else DEMO


def allowed(action: str, what: str) -> bool:
    """Whether this session's role may take the action; if not, says so in plain words where the control would be."""
    actor = me()
    if can(actor, action):
        return True
    if actor.via == "demo":
        st.caption(f"To {what}, create the first admin account and log in: this demo session cannot.")
    else:
        st.caption(f"Your role ({role_label(actor.role)}) cannot {what}.")
    return False
