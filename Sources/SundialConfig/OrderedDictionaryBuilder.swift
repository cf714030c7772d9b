import OrderedCollections
import SundialCore

/// Builds a JSON object without re-exporting `OrderedCollections` from every file.
struct OrderedDictionaryBuilder {
    var dictionary: OrderedDictionary<String, JSONValue> = [:]

    init() {}

    /// Room for `capacity` keys at once: growing the keys and values from empty, one regrowth
    /// after another, was 3 % of a loader child's instructions.
    init(capacity: Int) { dictionary.reserveCapacity(capacity) }

    mutating func set(_ key: String, _ value: JSONValue) { dictionary[key] = value }
}
