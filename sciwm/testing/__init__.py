"""Test support that ships with sciwm: conformance suites and a simulated lab.

A connector's or a world model's test module inherits the suite of its contract::

    from sciwm.testing.connector_suite import ConnectorConformance
    from sciwm.testing.world_model_suite import WorldModelConformance

The suites need pytest (the ``dev`` extra); nothing here is imported by sciwm itself, and this
package imports none of its modules, so ``import sciwm.testing`` costs nothing.
"""
