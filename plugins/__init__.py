"""simplephone's built-in plugins, one package per feature.

Each uses only the hook API (`phone.hookspecs`) and the core's public objects,
exactly as a third-party plugin would. To add a plugin of your own:

1. Write a module that implements some hooks::

       # simplephone_no_anonymous.py
       from phone.hookspecs import hookimpl

       @hookimpl
       def incoming_call(call):
           return 603 if call.remote_uri.startswith("sip:anonymous@") else None

   `hookimpl` is `pluggy.HookimplMarker("simplephone")`; a function takes any
   subset of its hook's arguments, by name. To take settings from the
   `[plugins.<name>]` table, define `create_plugin(settings)` instead and return
   an object with `@hookimpl` methods (see `phone.hookspecs`).

2. Declare it in your distribution's entry points::

       [project.entry-points."simplephone.plugins"]
       no_anonymous = "simplephone_no_anonymous"

3. `pip install` it next to simplephone. It is loaded at the next start and is
   enabled unless the config says::

       [plugins.no_anonymous]
       enabled = false

`phone check-config` loads every enabled plugin and checks its settings.
"""
