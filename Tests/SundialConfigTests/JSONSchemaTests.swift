import SundialConfig
import SundialCore
import SundialTesting
import Testing

/// The validator's own behaviour beyond the official suite: the violations it reports (kind,
/// location, wording), how it picks `anyOf`/`oneOf` branches, and schema errors.
@Suite(.offPool) struct JSONSchemaTests {
    /// A small job-like schema in the style Sundial's own uses.
    static let jobSchema: JSONValue = try! JSONParser.parse(
        #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "type": "object",
          "required": ["version", "jobs"],
          "additionalProperties": false,
          "properties": {
            "version": {"const": 1},
            "jobs": {
              "type": "object",
              "propertyNames": {"pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
              "additionalProperties": {"$ref": "#/$defs/job"}
            }
          },
          "$defs": {
            "duration": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w))+$"},
            "job": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "description": {"type": "string", "description": "free text"},
                "schedule": {"type": "string", "minLength": 1},
                "every": {"$ref": "#/$defs/duration"},
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "shell": {"type": "string"},
                "timeout": {"$ref": "#/$defs/duration"},
                "concurrency": {"enum": ["forbid", "allow", "replace", "queue"]},
                "needs": {
                  "type": "array",
                  "items": {
                    "oneOf": [
                      {"type": "string"},
                      {"type": "object", "required": ["job"], "additionalProperties": false,
                       "properties": {"job": {"type": "string"}, "on": {"enum": ["success", "failure", "completion"]}}}
                    ]
                  }
                },
                "retry": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": {"attempts": {"type": "integer", "minimum": 1, "maximum": 100}}
                }
              },
              "oneOf": [{"required": ["command"]}, {"required": ["shell"]}],
              "not": {"required": ["schedule", "every"]}
            }
          }
        }
        """#)

    static let schema = try! JSONSchema(jobSchema)

    func violations(_ json: String) throws -> [SchemaViolation] {
        Self.schema.validate(try JSONParser.parse(json))
    }

    func only(_ json: String) throws -> SchemaViolation {
        let v = try violations(json)
        #expect(v.count == 1, "\(v)")
        return try #require(v.first)
    }

    @Test func validDocumentHasNoViolations() throws {
        let doc =
            #"{"version": 1, "jobs": {"a": {"shell": "true", "every": "30s", "needs": ["b", {"job": "c", "on": "failure"}]}, "b": {"command": ["x"]}, "c": {"command": ["y"], "retry": {"attempts": 3.0}}}}"#
        #expect(try violations(doc).isEmpty)
        #expect(Self.schema.isValid(try JSONParser.parse(doc)))
    }

    @Test func typeMismatch() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": 5}}}"#)
        #expect(v.instancePath == ["jobs", "a", "shell"])
        #expect(v.instancePointer == "/jobs/a/shell")
        #expect(v.keyword == "type")
        #expect(v.kind == .typeMismatch(expected: ["string"], actual: "integer"))
        #expect(v.message == "expected a string, found an integer")
        #expect(v.schemaPath == ["$defs", "job", "properties", "shell", "type"])
        #expect(Self.schema.subschema(at: v.schemaPath.dropLast()) == ["type": "string"])
    }

    @Test func typeWordsSpeakYAML() throws {
        #expect(try only(#"{"version": 1, "jobs": {"a": {"command": "ls"}}}"#).message == "expected a list, found a string")
        #expect(try only(#"{"version": 1, "jobs": []}"#).message == "expected a map, found a list")
        #expect(try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "retry": {"attempts": 1.5}}}}"#).message == "expected an integer, found a number")
        #expect(try only(#"{"version": 1, "jobs": {"a": {"shell": true}}}"#).message == "expected a string, found a boolean")
    }

    @Test func unknownKeyCarriesTheAllowedNames() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "timout": "5m"}}}"#)
        #expect(v.instancePath == ["jobs", "a", "timout"])
        #expect(v.keyword == "additionalProperties")
        #expect(v.message == "unknown key `timout`")
        guard case let .unknownProperty(name, allowed) = v.kind else {
            Issue.record("\(v.kind)")
            return
        }
        #expect(name == "timout")
        #expect(allowed == ["description", "schedule", "every", "command", "shell", "timeout", "concurrency", "needs", "retry"])
    }

    @Test func missingRequiredKey() throws {
        let v = try only(#"{"jobs": {}}"#)
        #expect(v.instancePath == [])
        #expect(v.kind == .missingProperty(name: "version"))
        #expect(v.message == "missing required key `version`")
        #expect(v.description == "(root): missing required key `version`")
    }

    @Test func enumListsTheChoices() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "concurrency": "forbidd"}}}"#)
        #expect(v.message == "must be one of: forbid, allow, replace, queue")
        #expect(v.kind == .notInEnum(allowed: ["forbid", "allow", "replace", "queue"]))
    }

    @Test func constSaysTheValue() throws {
        let v = try only(#"{"version": 2, "jobs": {}}"#)
        #expect(v.message == "must be `1`")
        #expect(v.kind == .notInEnum(allowed: [1]))
    }

    @Test func patternMismatchThroughRef() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "timeout": "5 minutes"}}}"#)
        #expect(v.kind == .patternMismatch(pattern: "^([0-9]+(ms|s|m|h|d|w))+$"))
        #expect(v.message == "`5 minutes` does not match the pattern `^([0-9]+(ms|s|m|h|d|w))+$`")
        #expect(v.schemaPath == ["$defs", "duration", "pattern"])
    }

    @Test func propertyNamesPointAtTheKey() throws {
        let v = try only(#"{"version": 1, "jobs": {"Bad Id": {"shell": "x"}}}"#)
        #expect(v.instancePath == ["jobs", "Bad Id"])
        #expect(v.message.hasPrefix("key name `Bad Id` does not match the pattern"))
    }

    @Test func collectsEveryViolation() throws {
        let v = try violations(#"{"version": 1, "extra": 1, "jobs": {"a": {"shell": 1, "retry": {"attempts": 0}}, "b": {"command": [], "concurrency": "x"}}}"#)
        #expect(v.map(\.instancePointer) == ["/extra", "/jobs/a/shell", "/jobs/a/retry/attempts", "/jobs/b/command", "/jobs/b/concurrency"])
        #expect(
            v.map(\.message) == [
                "unknown key `extra`",
                "expected a string, found an integer",
                "must be at least 1 (found 0)",
                "must have at least 1 item (found 0)",
                "must be one of: forbid, allow, replace, queue",
            ])
    }

    // MARK: - anyOf / oneOf reporting

    @Test func oneOfNeitherBranchNamesBothKeys() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"every": "5m"}}}"#)
        #expect(v.message == "missing required key `command` or `shell`")
        #expect(v.keyword == "oneOf")
        #expect(v.kind == .missingProperty(name: "command"))
    }

    @Test func oneOfBothBranchesSaysUseOnlyOne() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"command": ["x"], "shell": "x"}}}"#)
        #expect(v.message == "use only one of `command`, `shell`")
        #expect(v.kind == .matchesSeveral(branches: [0, 1]))
    }

    @Test func notRequiredPairReadsAsExclusion() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "schedule": "* * * * *", "every": "1m"}}}"#)
        #expect(v.message == "keys `schedule` and `every` cannot be used together")
        #expect(v.keyword == "not")
    }

    @Test func oneOfPicksTheBranchOfTheValuesType() throws {
        // An object `needs` item: the string branch is irrelevant, report the object branch.
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "needs": [{"job": "b", "on": "sometimes"}]}}}"#)
        #expect(v.instancePath == ["jobs", "a", "needs", "0", "on"])
        #expect(v.message == "must be one of: success, failure, completion")
        // Within the chosen branch, every violation is kept.
        let w = try violations(#"{"version": 1, "jobs": {"a": {"shell": "x", "needs": [{"jobb": "b"}]}}}"#)
        #expect(w.map(\.description) == ["/jobs/a/needs/0: missing required key `job`", "/jobs/a/needs/0/jobb: unknown key `jobb`"])
    }

    @Test func noBranchAcceptsTheTypeMergesTheTypes() throws {
        let v = try only(#"{"version": 1, "jobs": {"a": {"shell": "x", "needs": [42]}}}"#)
        #expect(v.message == "expected a string or a map, found an integer")
        #expect(v.kind == .typeMismatch(expected: ["string", "object"], actual: "integer"))
    }

    @Test func anyOfPrefersTheBranchThatGotFurthest() throws {
        let s = try JSONSchema([
            "anyOf": [
                ["type": "object", "required": ["a"]],
                ["type": "object", "properties": ["b": ["properties": ["c": ["type": "integer"]]]]],
            ]
        ])
        let v = s.validate(["b": ["c": "x"]])
        #expect(v.count == 1)
        #expect(v.first?.instancePath == ["b", "c"])
    }

    @Test func oneOfNamesTitledBranches() throws {
        let s = try JSONSchema(["oneOf": [["title": "a number", "type": "number"], ["title": "an integer", "type": "integer"]]])
        #expect(s.validate(3).map(\.message) == ["matches more than one alternative (`a number`, `an integer`); it must match exactly one"])
    }

    // MARK: - Other keywords' wording

    static let wordingCases: [(JSONValue, JSONValue, String)] = [
        (["maxLength": 3], "abcd", "must be at most 3 characters long (found 4)"),
        (["minLength": 1], "", "must not be empty"),
        (["minLength": 2], "😀", "must be at least 2 characters long"),
        (["exclusiveMinimum": 0], 0, "must be greater than 0 (found 0)"),
        (["maximum": 1.5], 2, "must be at most 1.5 (found 2)"),
        (["exclusiveMaximum": 10], 10.0, "must be less than 10 (found 10)"),
        (["multipleOf": 0.5], 0.7, "must be a multiple of 0.5"),
        (["maxItems": 1], [1, 2], "must have at most 1 item (found 2)"),
        (["minProperties": 2], ["a": 1], "must have at least 2 keys (found 1)"),
        (["maxProperties": 0], ["a": 1], "must have at most 0 keys (found 1)"),
        (["uniqueItems": true], [1, "x", 1.0], "repeats an earlier item (items must be unique)"),
        (["contains": ["type": "string"]], [1, 2], "must contain at least 1 item of the required form (found 0)"),
        (["contains": ["type": "string"], "maxContains": 1], ["a", "b"], "must contain at most 1 item of the given form (found 2)"),
        (["dependentRequired": ["user": ["group"]]], ["user": "x"], "key `group` is required when `user` is present"),
        (["properties": ["x": false]], ["x": 1], "key `x` is not allowed here"),
        (false, 1, "no value is allowed here"),
        (["not": ["type": "string"]], "s", "is not allowed here (it matches an excluded form)"),
        (["type": ["string", "null"]], 1, "expected a string or null, found an integer"),
        (["type": ["integer", "number"]], "1", "expected a number, found a string"),
    ]

    @Test(arguments: wordingCases)
    func wording(schema: JSONValue, instance: JSONValue, message: String) throws {
        let v = try JSONSchema(schema).validate(instance)
        #expect(v.map(\.message) == [message])
    }

    @Test func uniqueItemsPointsAtEachRepeat() throws {
        let s = try JSONSchema(["uniqueItems": true])
        #expect(s.validate([1, 2, 1, 2, 3]).map(\.instancePath) == [["2"], ["3"]])
        // Long arrays take the hashed path; 1 == 1.0 and key order is irrelevant there too.
        var long: [JSONValue] = (0..<100).map { .int($0) }
        long.append(.double(42.0))
        long.append(["a": 1, "b": 2])
        long.append(["b": 2, "a": 1.0])
        #expect(s.validate(.array(long)).map(\.instancePath) == [["100"], ["102"]])
    }

    @Test func lengthsCountCodePoints() throws {
        let s = try JSONSchema(["maxLength": 2])
        #expect(s.validate("é😀").isEmpty)  // 2 code points, 6 UTF-8 bytes
        #expect(!s.validate("e\u{301}x").isEmpty)  // 3 code points, 2 characters
    }

    @Test func integerAcceptsWholeDoubles() throws {
        let s = try JSONSchema(["type": "integer"])
        #expect(s.validate(1.0).isEmpty)
        #expect(!s.validate(1.5).isEmpty)
    }

    @Test func bigIntegersCompareExactly() throws {
        let s = try JSONSchema(["maximum": 9_007_199_254_740_992.0])  // 2^53
        #expect(s.validate(.int(9_007_199_254_740_992)).isEmpty)
        #expect(!s.validate(.int(9_007_199_254_740_993)).isEmpty)
    }

    @Test func deepInstanceIsAViolationNotACrash() throws {
        let s = try JSONSchema(["$defs": ["n": ["type": "array", "items": ["$ref": "#/$defs/n"]]], "$ref": "#/$defs/n"])
        var v: JSONValue = []
        for _ in 0..<300 { v = [v] }
        #expect(s.validate(v).isEmpty)
        for _ in 0..<1000 { v = [v] }
        let errs = s.validate(v)
        #expect(errs.count == 1)
        #expect(errs.first?.message.contains("nested too deeply") == true)
        #expect(!s.isValid(v))
    }

    @Test func concurrentValidationIsSafe() async throws {
        let schema = Self.schema
        let doc = try JSONParser.parse(#"{"version": 1, "jobs": {"a": {"shell": 1, "timeout": "x"}}}"#)
        let counts = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { (0..<200).reduce(0) { n, _ in n + schema.validate(doc).count } } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts == Array(repeating: 400, count: 8))
    }

    // MARK: - Schema errors

    static let badSchemas: [(JSONValue, JSONSchemaError.Code, [String])] = [
        (["type": 1], .invalidSchema, ["type"]),
        (["type": "strin"], .invalidSchema, ["type"]),
        (["minLength": -1], .invalidSchema, ["minLength"]),
        (["multipleOf": 0], .invalidSchema, ["multipleOf"]),
        (["properties": ["a": 3]], .invalidSchema, ["properties", "a"]),
        (["pattern": "(unclosed"], .invalidSchema, ["pattern"]),
        (["items": [["type": "string"]]], .invalidSchema, ["items"]),
        (["allOf": []], .invalidSchema, ["allOf"]),
        (["$ref": "#/$defs/missing"], .unresolvedReference, ["$ref"]),
        (["$ref": "#nowhere"], .unresolvedReference, ["$ref"]),
        (["$ref": "https://example.com/other.json"], .unresolvedReference, ["$ref"]),
        (["unevaluatedProperties": false], .unsupportedKeyword, ["unevaluatedProperties"]),
        (["$dynamicRef": "#x"], .unsupportedKeyword, ["$dynamicRef"]),
        (["$schema": "http://json-schema.org/draft-07/schema#"], .unsupportedKeyword, ["$schema"]),
        (["$ref": "#"], .referenceCycle, []),
        (["$defs": ["a": ["allOf": [["$ref": "#/$defs/b"]]], "b": ["$ref": "#/$defs/a"]], "$ref": "#/$defs/a"], .referenceCycle, ["$defs", "a"]),
    ]

    @Test(arguments: badSchemas)
    func rejectsBadSchemas(schema: JSONValue, code: JSONSchemaError.Code, at path: [String]) {
        do {
            _ = try JSONSchema(schema)
            Issue.record("accepted \(schema.jsonText)")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.schemaPath == path, "\(error)")
        }
    }

    @Test func recursionThroughTheInstanceIsNoCycle() throws {
        let s = try JSONSchema(["type": "object", "properties": ["child": ["$ref": "#"]]])
        #expect(s.validate(["child": ["child": [:]]]).isEmpty)
        #expect(s.validate(["child": ["child": 1]]).map(\.instancePointer) == ["/child/child"])
    }

    @Test func unknownKeywordsAreListed() throws {
        let s = try JSONSchema(["properties": ["a": ["typ": "string"]], "additionalPropertes": false, "title": "t"])
        #expect(s.unknownKeywords == ["/properties/a/typ", "/additionalPropertes"])
        #expect(try JSONSchema(Self.jobSchema).unknownKeywords.isEmpty)
    }

    @Test func pointerEscapes() {
        #expect(JSONSchema.pointer(["a/b", "c~d", ""]) == "/a~1b/c~0d/")
        #expect(JSONSchema.pointer([]) == "")
    }

    /// RFC 6901: `~1` is `/` and `~0` is `~`, unescaped in that order, so `~01` is `~1`.
    @Test func referencesUnescapePointerTokens() throws {
        let s = try JSONSchema([
            "$defs": ["a/b": ["type": "string"], "c~d": ["type": "integer"], "~1": ["type": "boolean"]],
            "properties": [
                "x": ["$ref": "#/$defs/a~1b"], "y": ["$ref": "#/$defs/c~0d"], "z": ["$ref": "#/$defs/~01"],
            ],
        ])
        #expect(s.validate(["x": "s", "y": 1, "z": true]).isEmpty)
        #expect(s.validate(["x": 1, "y": "s", "z": 1]).map(\.instancePointer).sorted() == ["/x", "/y", "/z"])
        #expect(throws: JSONSchemaError.self) { try JSONSchema(["properties": ["x": ["$ref": "#/$defs/a~1c"]], "$defs": ["a/b": true]]) }
    }

    @Test func errorDescriptionNamesTheSchemaLocation() {
        let e = JSONSchemaError(.invalidSchema, at: ["properties", "a"], "bad")
        #expect(e.description == "schema /properties/a: bad")
    }
}
