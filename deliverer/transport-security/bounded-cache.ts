// Caches of what DNS and policy hosts said, kept to a size: the newest entry goes last, and
// past `max` the oldest goes (Map keeps insertion order).
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
