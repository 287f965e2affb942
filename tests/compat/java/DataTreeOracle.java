// The Apache ZooKeeper DataTree as a test oracle for tests/java_datatree_oracle.rs (outpost's own code,
// calling the public classes of the installed zookeeper.jar).
//
// stdin, big-endian, repeated until EOF: i32 txnCount, then txnCount × (i32 len, len bytes of a txn log
// entry: TxnHeader, txn record, optional TxnDigest, as SerializeUtils.deserializeTxn reads it).
// Each sequence runs on a fresh `new DataTree()` through DataTree.processTxn, in order.
// stdout, per sequence: i32 txnCount, txnCount × i32 err (ProcessTxnResult.err), i64 tree digest,
// i64 lastProcessedZxid, i32 len, len bytes of DataTree.serialize (the ACL map, then the nodes).
import java.io.ByteArrayOutputStream;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;

import org.apache.jute.BinaryOutputArchive;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.server.TxnLogEntry;
import org.apache.zookeeper.server.util.SerializeUtils;

public class DataTreeOracle {
    public static void main(String[] args) throws Exception {
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(System.out));
        while (true) {
            int count;
            try {
                count = in.readInt();
            } catch (EOFException e) {
                break;
            }
            DataTree dt = new DataTree();
            out.writeInt(count);
            for (int i = 0; i < count; i++) {
                byte[] entry = new byte[in.readInt()];
                in.readFully(entry);
                TxnLogEntry le = SerializeUtils.deserializeTxn(entry);
                DataTree.ProcessTxnResult rc = dt.processTxn(le.getHeader(), le.getTxn());
                out.writeInt(rc.err);
            }
            out.writeLong(dt.getTreeDigest());
            out.writeLong(dt.lastProcessedZxid);
            ByteArrayOutputStream tree = new ByteArrayOutputStream();
            dt.serialize(BinaryOutputArchive.getArchive(tree), "tree");
            out.writeInt(tree.size());
            tree.writeTo(out);
        }
        out.flush();
    }
}
