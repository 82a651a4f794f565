"""IoT intake: cameras whose AI reports violations (R-IN-7) and sensors that raise alarms over
MQTT (R-IN-8). Owns the camera and sensor registries, the detection kinds (each mapped to a
taxonomy class), the device API keys, the sensors' readings and states (normal / alarm /
silent), the MQTT bridge, and the counters of what the bridge refused. Every case it makes
is born through `intake.receive()`; repeats join the open case through `cases.add_note()`."""
