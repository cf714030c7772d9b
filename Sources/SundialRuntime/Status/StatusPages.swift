import SundialCore

/// The read-only status routes of the `--metrics-listen` server: the pages (`/`, `/jobs/{id}`,
/// `/timeline`) and their JSON (`/api/v1/…`, described by docs/openapi/status-api.yaml).
///
/// Nothing here changes the agent: there is no trigger, pause or reload over HTTP. Each request
/// takes a fresh snapshot from a ``StatusDataSource`` and renders it; nothing is cached between
/// requests, so an unused page holds no memory and schedules no work.
public struct StatusPages: Sendable {
    /// A parsed request path.
    public enum Route: Hashable, Sendable {
        case jobs
        case job(JobID)
        case timeline
        /// `/timeline?page=N` for N ≥ 2 (page 1 is ``timeline``): the timeline shows at most
        /// ``StatusPageRenderer/timelineJobsPerPage`` jobs a page, readable and under 1 MB.
        case timelinePage(Int)
        case apiAgent, apiJobs
        case apiJob(JobID)
        case apiRuns(JobID)

        /// The route of a request target (path and query): only the timeline reads its query
        /// (`page`, 1 to 10,000; anything else is page 1).
        public init?(target: String) {
            let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            self.init(path: String(parts[0]))
            guard self == .timeline, parts.count == 2 else { return }
            for pair in parts[1].split(separator: "&") where pair.hasPrefix("page=") {
                if let n = Int(pair.dropFirst(5)), n >= 2, n <= 10_000 { self = .timelinePage(n) }
            }
        }

        /// The route of `path` (without its query), or nil for a path that is not a status route.
        public init?(path: String) {
            switch path {
            case "/", "/jobs", "/jobs/": self = .jobs
            case "/timeline": self = .timeline
            case "/api/v1/agent": self = .apiAgent
            case "/api/v1/jobs": self = .apiJobs
            default:
                let parts = path.split(separator: "/", omittingEmptySubsequences: false)
                // "/jobs/ID" → ["", "jobs", "ID"]; "/api/v1/jobs/ID[/runs]" → ["", "api", "v1", "jobs", "ID"(, "runs")]
                if parts.count == 3, parts[1] == "jobs", let id = Self.jobID(parts[2]) {
                    self = .job(id)
                } else if parts.count == 5, parts[1] == "api", parts[2] == "v1", parts[3] == "jobs", let id = Self.jobID(parts[4]) {
                    self = .apiJob(id)
                } else if parts.count == 6, parts[1] == "api", parts[2] == "v1", parts[3] == "jobs", parts[5] == "runs",
                    let id = Self.jobID(parts[4])
                {
                    self = .apiRuns(id)
                } else {
                    return nil
                }
            }
        }

        /// A job id from a path segment: percent-decoded, non-empty, at most 256 bytes (ids are
        /// at most 63; longer ones are answered 404 without a lookup).
        static func jobID(_ segment: Substring) -> JobID? {
            guard !segment.isEmpty, segment.utf8.count <= 3 * 256, let id = HTMLEscape.percentDecode(segment),
                !id.isEmpty, id.utf8.count <= 256
            else { return nil }
            return id
        }

        var isAPI: Bool {
            switch self {
            case .apiAgent, .apiJobs, .apiJob, .apiRuns: true
            case .jobs, .job, .timeline, .timelinePage: false
            }
        }
    }

    /// A complete answer, for the server to frame.
    public struct Response: Sendable {
        public var status: Int
        public var reason: String
        public var contentType: String
        public var body: [UInt8]
        public init(status: Int, reason: String, contentType: String, body: [UInt8]) {
            self.status = status
            self.reason = reason
            self.contentType = contentType
            self.body = body
        }
    }

    static let html = "text/html; charset=utf-8"
    static let json = "application/json"

    let source: any StatusDataSource

    public init(source: any StatusDataSource) { self.source = source }

    /// Renders the answer to `route` from a fresh snapshot.
    public func respond(to route: Route) async -> Response {
        switch route {
        case .jobs:
            let (agent, rows) = await source.jobRows()
            return ok(StatusPageRenderer.jobsPage(agent: agent, rows: rows), Self.html)
        case let .job(id):
            guard let (agent, detail) = await source.jobDetail(id) else { return Self.notFound(route, job: id) }
            return ok(StatusPageRenderer.jobPage(agent: agent, detail: detail), Self.html)
        case .timeline:
            let (agent, timeline) = await source.timeline()
            return ok(StatusPageRenderer.timelinePage(agent: agent, timeline: timeline, page: 1), Self.html)
        case let .timelinePage(page):
            let (agent, timeline) = await source.timeline()
            return ok(StatusPageRenderer.timelinePage(agent: agent, timeline: timeline, page: page), Self.html)
        case .apiAgent:
            return ok(Self.encode(await source.agentInfo().json), Self.json)
        case .apiJobs:
            let (agent, rows) = await source.jobRows()
            return ok(Self.encode(StatusJSON.jobs(rows, now: agent.now)), Self.json)
        case let .apiJob(id):
            guard let (_, detail) = await source.jobDetail(id) else { return Self.notFound(route, job: id) }
            return ok(Self.encode(detail.json), Self.json)
        case let .apiRuns(id):
            guard let (_, detail) = await source.jobDetail(id) else { return Self.notFound(route, job: id) }
            return ok(Self.encode(detail.runsJSON), Self.json)
        }
    }

    func ok(_ body: [UInt8], _ type: String) -> Response { Response(status: 200, reason: "OK", contentType: type, body: body) }

    static func encode(_ v: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        v.encode(into: &out)
        out.append(0x0A)
        return out
    }

    static func notFound(_ route: Route, job: JobID) -> Response {
        let message = "unknown job \(job)"
        if route.isAPI { return Response(status: 404, reason: "Not Found", contentType: json, body: encode(StatusJSON.error(message))) }
        return Response(
            status: 404, reason: "Not Found", contentType: html,
            body: StatusPageRenderer.messagePage(title: "Not found", message: message))
    }

    /// The agent did not answer in time (it is stopping, or stuck): 503, in the route's format.
    static func unavailable(_ route: Route, message: String) -> Response {
        if route.isAPI {
            return Response(status: 503, reason: "Service Unavailable", contentType: json, body: encode(StatusJSON.error(message)))
        }
        return Response(
            status: 503, reason: "Service Unavailable", contentType: html,
            body: StatusPageRenderer.messagePage(title: "Unavailable", message: message))
    }
}
