// Debian's libyaml (libyaml-dev at build time, libyaml-0-2 at run time): the YAML 1.1 scanner
// and parser behind Sundial's YAMLReader. Only its event API is used; the node tree is built in
// Swift (SundialConfig/YAMLComposer.swift) so that depth, size and aliases are bounded there.
#include <yaml.h>
