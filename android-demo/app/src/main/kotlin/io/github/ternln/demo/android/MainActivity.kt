package io.github.ternln.demo.android

import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import io.github.ternln.tern.Node
import kotlinx.coroutines.launch

/**
 * One screen, built in code: the node's address, balances and channels, the last background
 * runs (the wake log), and a field to open a channel to `node_id@host:port`. The node comes
 * from the process-wide holder (started when the app is in the foreground).
 */
class MainActivity : AppCompatActivity() {
    private lateinit var info: TextView
    private lateinit var wakes: TextView
    private lateinit var peer: EditText

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        info = TextView(this)
        wakes = TextView(this)
        peer = EditText(this).apply { hint = "node_id@host:port (the LSP)" }
        val refresh = Button(this).apply { text = "Sync and refresh"; setOnClickListener { refresh(sync = true) } }
        val open = Button(this).apply { text = "Open a 100,000 sat channel"; setOnClickListener { open() } }
        val column = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 32, 32, 32)
            listOf(info, refresh, peer, open, TextView(context).apply { text = "\nBackground runs" }, wakes)
                .forEach { addView(it) }
        }
        setContentView(ScrollView(this).apply { addView(column) })
    }

    override fun onResume() {
        super.onResume()
        refresh(sync = false)
    }

    private val app get() = application as TernApp

    private fun show(block: suspend (Node) -> Unit) {
        lifecycleScope.launch {
            try {
                block(app.holder.foreground())
            } catch (e: Exception) {
                info.text = "error: ${e.message}"
            }
            wakes.text = app.log.recent().joinToString("\n") { it.display() }.ifEmpty { "none yet" }
        }
    }

    private fun refresh(sync: Boolean) = show { node ->
        if (sync) node.sync(java.time.Duration.ofSeconds(10))
        val b = node.listBalances()
        val channels = node.listChannels()
        info.text = buildString {
            append("node ").append(node.nodeId()).append('\n')
            append("address ").append(node.newAddress()).append('\n')
            append("balance ").append(b.confirmedSat).append(" sat (+").append(b.unconfirmedSat)
                .append(" unconfirmed, ").append(b.lockedSat).append(" locked)\n")
            append("tip ").append(node.syncedHeight() ?: "-").append('\n')
            if (channels.isEmpty()) append("no channel\n")
            channels.forEach {
                append("channel ").append(it.channelId.take(12)).append("… ").append(it.status)
                    .append(", ").append(it.channelValueSat).append(" sat, ").append(it.confirmations)
                    .append(" conf\n")
            }
        }
    }

    private fun open() = show { node ->
        val (id, address) = peer.text.toString().trim().split('@', limit = 2).let { it[0] to it.getOrElse(1) { "" } }
        node.openChannel(id, address, 100_000uL, 0uL, false)
        refresh(sync = false)
    }
}
