"""Simulated IoT health devices publishing JSON vitals over MQTT (`python -m simulator`)."""
