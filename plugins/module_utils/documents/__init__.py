# PRIVATE to the collection: not a public API.
"""Documents the collection reads - policy files, catalog files, request documents - and what
is wrong with them. No Ansible imports: the policy engine and the catalog loader share it.

- problems: the one error root (ImagegovError), Problem and ProblemsError
- yaml_source: strict YAML (duplicate keys are errors, dates stay text) with item lines
- files: which YAML files a list of files and directories names
- validation: cerberus with one line per problem, naming the field
"""
