"""Integrations with other libraries; each needs its optional extra (``eventstore[NAME]``)."""
