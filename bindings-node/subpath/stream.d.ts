/** A stream store (deprecated in the published client; kept for its programs). */
export interface IStream<TData> {
  get(input: { stream_name: string; group_id: string; item_id: string }): Promise<TData | null>
  set(input: { stream_name: string; group_id: string; item_id: string; data: TData }): Promise<{ old_value?: TData; new_value: TData } | null>
  delete(input: { stream_name: string; group_id: string; item_id: string }): Promise<{ old_value?: TData }>
  list(input: { stream_name: string; group_id: string }): Promise<TData[]>
  listGroups(input: { stream_name: string }): Promise<string[]>
  update(input: { stream_name: string; group_id: string; item_id: string; ops: unknown[] }): Promise<{ old_value?: TData; new_value: TData } | null>
}
