"""Users: admins add accounts, change roles, disable accounts and reset passwords (each checked in the library)."""
import pandas as pd
import streamlit as st

from fraudlab.auth import users
from fraudlab.auth.actors import ROLES, role_label
from fraudlab.errors import FraudlabError
from ui.auth import me
from ui.cases import readable
from ui.state import get_workspace

ws = get_workspace()
actor = me()
st.title("Users")
accounts = users.list_users(ws)
if accounts:
    st.dataframe(readable(pd.DataFrame([a.__dict__ for a in accounts])
                          .assign(role=lambda f: f["role"].map(role_label))), width="stretch", hide_index=True)
else:
    st.info("No account yet: this is a demo session. Create the first admin with "
            "`python -m fraudlab users add NAME --role admin`.")
st.table({"Role": [role_label(r) for r in ROLES], "Can": list(ROLES.values())})


def _act(fn, *args, done: str) -> None:
    try:
        fn(ws, actor, *args)
        st.success(done)
    except FraudlabError as exc:
        st.error(str(exc))


with st.form("add_user", clear_on_submit=True):
    st.subheader("Add an account")
    name = st.text_input("User name")
    role = st.selectbox("Role", list(ROLES), format_func=role_label)
    password = st.text_input("First password (at least 10 characters; blank for single sign-on only)",
                             type="password")
    if st.form_submit_button("Add", icon=":material/person_add:"):
        _act(users.add_user, name.strip(), role, password or None, done=f"Added {name.strip()}.")
names = [a.name for a in accounts]
if names:
    st.subheader("Change an account")
    target = st.selectbox("Account", names, key="user_target")
    a, b, c = st.columns(3)
    new_role = a.selectbox("New role", list(ROLES), format_func=role_label, key="user_role")
    if a.button("Set role", key="user_set_role"):
        _act(users.set_role, target, new_role, done=f"{target} is now {role_label(new_role)}.")
    new_password = b.text_input("New password", type="password", key="user_password")
    if b.button("Reset password", key="user_reset"):
        _act(users.reset_password, target, new_password, done=f"New password set for {target}.")
    if c.button("Disable account", key="user_disable"):
        _act(users.disable_user, target, done=f"{target} is disabled.")
