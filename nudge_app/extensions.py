"""Flask extensions, created unbound here and attached to the app in `create_app`."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from nudge_app.db import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
