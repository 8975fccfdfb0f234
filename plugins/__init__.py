"""simplephone's built-in plugins, one package per feature.

Each uses only the hooks (`phone.hookspecs`) and the `phone.api.PhoneApi` it
is given, exactly as a third-party plugin would. How to write, package and
test a plugin of your own, with a complete example: plugins/README.md.
"""
