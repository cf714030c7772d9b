import OrderedCollections
import SundialCore

/// Builds a JSON object without re-exporting `OrderedCollections` from every file.
struct OrderedDictionaryBuilder {
    var dictionary: OrderedDictionary<String, JSONValue> = [:]
    mutating func set(_ key: String, _ value: JSONValue) { dictionary[key] = value }
}
