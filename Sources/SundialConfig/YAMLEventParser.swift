internal import CYAML

/// One libyaml parse event, copied out of C memory so that the C event is freed at once.
enum YAMLEvent {
    case streamStart
    case streamEnd
    case documentStart
    case documentEnd
    case alias(anchor: String)
    /// `plain` is false for quoted and block scalars and for scalars tagged `!!str` or `!`:
    /// only plain scalars are typed by the YAML 1.2 core schema (see `YAMLNode.resolvePlain`).
    case scalar(String, anchor: String?, plain: Bool)
    case sequenceStart(anchor: String?)
    case sequenceEnd
    case mappingStart(anchor: String?)
    case mappingEnd
}

/// A 1-based line and column, columns counted in Unicode scalars (as libyaml counts them).
struct YAMLMark: Equatable {
    var line: Int
    var column: Int
}

/// Why libyaml stopped: its error kind, problem and context, with 1-based marks.
struct YAMLSyntaxError: Error {
    enum Kind { case memory, reader, scanner, parser, other }
    var kind: Kind
    var problem: String
    var problemMark: YAMLMark
    var context: String?
    var contextMark: YAMLMark
    /// For reader errors: the byte offset and the offending value.
    var offset: Int
    var value: Int
}

/// A pull parser over libyaml's event API (`yaml_parser_parse`).
///
/// Why events and not libyaml's document loader (`yaml_parser_load`): the loader knows no
/// depth or size limits and builds a whole C tree first. Events carry no nesting of their own;
/// `YAMLComposer` builds Sundial's positioned tree straight from them with an explicit stack
/// and stops at the first level or node past a limit.
///
/// The parser reads `input` in place: use it only inside `withParser(bytes:_:)`, which keeps
/// the bytes alive and frees libyaml's parser on every path.
final class YAMLEventParser {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    /// False when libyaml could not allocate its buffers (it then freed what it had).
    private let initialized: Bool

    private init(input: UnsafeBufferPointer<UInt8>) {
        parser = .allocate(capacity: 1)
        initialized = yaml_parser_initialize(parser) == 1
        if initialized {
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, input.baseAddress, input.count)
        }
    }

    deinit {
        if initialized { yaml_parser_delete(parser) }
        parser.deallocate()
    }

    /// Runs `body` with a parser over `bytes`, which must stay unchanged meanwhile.
    static func withParser<R, E: Error>(bytes: [UInt8], _ body: (YAMLEventParser) throws(E) -> R) throws(E) -> R {
        // libyaml asserts on a null input pointer, which an empty array may give.
        let input = bytes.isEmpty ? [0] : bytes
        let result: Result<R, E> = input.withUnsafeBufferPointer { buffer in
            // Released (deinit: `yaml_parser_delete`) at the end of this closure, while the
            // buffer it points into is still valid.
            let parser = YAMLEventParser(input: UnsafeBufferPointer(rebasing: buffer[0..<bytes.count]))
            do throws(E) { return .success(try body(parser)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The next event, where it starts and where it ends, or libyaml's error. Never called
    /// after `.streamEnd`.
    ///
    /// The end is libyaml's: just past a plain or quoted scalar's last character, but for a
    /// block scalar (`|`, `>`) and a block collection where the next token starts, after the
    /// next line's indentation (``YAMLNode/endLine`` says what that means for its lines).
    func next() throws(YAMLSyntaxError) -> (event: YAMLEvent, mark: YAMLMark, end: YAMLMark) {
        guard initialized else {
            let start = YAMLMark(line: 1, column: 1)
            throw YAMLSyntaxError(
                kind: .memory, problem: "cannot allocate the parser", problemMark: start,
                context: nil, contextMark: start, offset: 0, value: 0)
        }
        var e = yaml_event_t()
        // Deleting a zeroed (failed) event is a no-op, so one `defer` covers both paths.
        defer { yaml_event_delete(&e) }
        guard yaml_parser_parse(parser, &e) == 1 else { throw currentError() }
        let mark = YAMLMark(line: Int(e.start_mark.line) + 1, column: Int(e.start_mark.column) + 1)
        let end = YAMLMark(line: Int(e.end_mark.line) + 1, column: Int(e.end_mark.column) + 1)
        let event: YAMLEvent
        switch e.type {
        case YAML_STREAM_START_EVENT: event = .streamStart
        case YAML_STREAM_END_EVENT: event = .streamEnd
        case YAML_DOCUMENT_START_EVENT: event = .documentStart
        case YAML_DOCUMENT_END_EVENT: event = .documentEnd
        case YAML_ALIAS_EVENT: event = .alias(anchor: Self.string(e.data.alias.anchor) ?? "")
        case YAML_SCALAR_EVENT:
            let s = e.data.scalar
            let text = s.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self) } ?? ""
            let tag = Self.string(s.tag)
            let forcedString = tag == "tag:yaml.org,2002:str" || tag == "!"
            event = .scalar(text, anchor: Self.string(s.anchor), plain: s.style == YAML_PLAIN_SCALAR_STYLE && !forcedString)
        case YAML_SEQUENCE_START_EVENT: event = .sequenceStart(anchor: Self.string(e.data.sequence_start.anchor))
        case YAML_SEQUENCE_END_EVENT: event = .sequenceEnd
        case YAML_MAPPING_START_EVENT: event = .mappingStart(anchor: Self.string(e.data.mapping_start.anchor))
        case YAML_MAPPING_END_EVENT: event = .mappingEnd
        default:
            throw YAMLSyntaxError(
                kind: .other, problem: "unexpected event \(e.type.rawValue)", problemMark: mark,
                context: nil, contextMark: mark, offset: 0, value: 0)
        }
        return (event, mark, end)
    }

    private func currentError() -> YAMLSyntaxError {
        let p = parser.pointee
        func mark(_ m: yaml_mark_t) -> YAMLMark { YAMLMark(line: Int(m.line) + 1, column: Int(m.column) + 1) }
        let kind: YAMLSyntaxError.Kind
        switch p.error {
        case YAML_MEMORY_ERROR: kind = .memory
        case YAML_READER_ERROR: kind = .reader
        case YAML_SCANNER_ERROR: kind = .scanner
        case YAML_PARSER_ERROR: kind = .parser
        default: kind = .other
        }
        return YAMLSyntaxError(
            kind: kind, problem: p.problem.map { String(cString: $0) } ?? "unknown error",
            problemMark: mark(p.problem_mark), context: p.context.map { String(cString: $0) },
            contextMark: mark(p.context_mark), offset: Int(p.problem_offset), value: Int(p.problem_value))
    }

    private static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        p.map { String(cString: $0) }
    }
}
